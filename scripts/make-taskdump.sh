#!/bin/sh
# make-taskdump.sh: make a kernel dump with ~300 tasks, for measuring
# `unwind bt --tasks` at the size issue 17 names (BenchmarkBtTasks300 in
# ./internal/cli, BenchmarkUnwindTasks300 in ./linux, ONLY=tasks300
# scripts/compare-speed.sh).
#
#   scripts/make-taskdump.sh [OUTDIR]   (default ~/.cache/unwind-corpus/taskdump)
#
# Boots Debian 12's linux-image-6.1.0-47-cloud-amd64 (the kernel of the prod
# corpus: KASLR, ORC, no frame pointers) under QEMU TCG (2 vCPUs, 512 MiB)
# with a busybox initramfs whose /init starts ~270 user tasks of several
# kinds on top of the kernel's own threads:
#   sleep 100000 (clock_nanosleep), `sleep | cat` and `sleep | sh -c read`
#   (pipe_read), cat of a FIFO nobody opens for writing (fifo_open),
#   `sh -c 'sleep; :'` (the shell in wait4), nc -l with no client
#   (inet_csk_accept), connected nc pairs (poll), and two busy loops (a
#   shell loop and dd, at nice 19).
# Then it writes `echo t > /proc/sysrq-trigger` (every task's kernel stack,
# printed by the kernel's own unwinder: the truth) to the serial console,
# and the host stops the guest and takes the dump with QMP
# dump-guest-memory in the first of kdump-lzo, kdump-zlib (Debian's QEMU 7.2
# has no LZO) and ELF it offers, re-laid out by makedumpfile -R when
# makedumpfile is installed (else kept flattened: unwind reads both).
#
# OUTDIR gets: vmcore.kdump-zlib (or .kdump-lzo, .kdump-*.flat, .elf), serial.log (the
# whole console, sysrq t included), qmp.log, tasks.txt (what /init
# started), vmlinux (a symlink to the debug vmlinux, see below) and
# README.txt. Nothing is written into the repository.
#
# Needs root and network for apt-get: it installs qemu-system-x86,
# busybox-static, lz4, binutils and makedumpfile when they are missing, and
# downloads (apt-get download, not installed) the kernel package for its
# vmlinuz and qemu_fw_cfg.ko (the module hands VMCOREINFO to QEMU).
#
# The symbol file is the prod corpus's debug vmlinux (VMLINUX=path, else
# ~/.cache/unwind-corpus/prod-*/prod-dev/kernel/vmlinux-6.1.0-47-cloud-amd64).
# The script stops with an error unless its GNU build id equals that of the
# kernel inside the package's vmlinuz. Without the corpus, the same file is
# usr/lib/debug/boot/vmlinux-6.1.0-47-cloud-amd64 of the package
# linux-image-6.1.0-47-cloud-amd64-dbg (about 1 GB; apt-get download, then
# dpkg-deb -x).
#
# Takes 3-10 minutes on a 2-core machine without KVM (TCG boot, the sysrq t
# print over the emulated UART).
set -eu

out=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/unwind-corpus/taskdump}
kver=6.1.0-47-cloud-amd64
kpkg=linux-image-$kver
here=$(cd "$(dirname "$0")/.." && pwd)
case "$(cd "$(dirname "$out")" 2>/dev/null && pwd)/" in
"$here"/*) echo "make-taskdump: $out is inside the repository; give another directory" >&2; exit 2 ;;
esac

# How many tasks of each kind /init starts (user tasks, ~270 in all).
N_SLEEP=${N_SLEEP:-60}      # sleep: 1 task each
N_PIPECAT=${N_PIPECAT:-30}  # sleep | cat: 2 each
N_PIPESH=${N_PIPESH:-15}    # sleep | sh -c read: 2 each
N_FIFO=${N_FIFO:-30}        # cat FIFO: 1 each
N_WAIT=${N_WAIT:-20}        # sh -c 'sleep; :': 2 each
N_LISTEN=${N_LISTEN:-10}    # nc -l: 1 each
N_NCPAIR=${N_NCPAIR:-8}     # sleep | nc -l, sleep | nc: 4 each
N_BUSY=${N_BUSY:-1}         # a shell loop and dd, at nice 19: 2 each

if [ "$(id -u)" != 0 ]; then
	echo "make-taskdump: needs root (apt-get install) and network (apt-get)" >&2
	exit 2
fi
need=""
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx nc || need="$need busybox-static"
command -v lz4 >/dev/null || need="$need lz4"
command -v readelf >/dev/null || need="$need binutils"
command -v python3 >/dev/null || need="$need python3"
command -v makedumpfile >/dev/null || need="$need makedumpfile"
if [ -n "$need" ]; then
	echo "make-taskdump: apt-get install$need"
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need
fi
busybox=/bin/busybox
readelf -l $busybox | grep -q INTERP && {
	echo "make-taskdump: $busybox is not static (install busybox-static)" >&2
	exit 2
}

vmlinux=${VMLINUX:-}
if [ -z "$vmlinux" ]; then
	for v in "$HOME"/.cache/unwind-corpus/prod-*/prod-dev/kernel/vmlinux-$kver; do
		[ -f "$v" ] && vmlinux=$v && break
	done
fi
if [ -z "$vmlinux" ] || [ ! -f "$vmlinux" ]; then
	echo "make-taskdump: no debug vmlinux: set VMLINUX (see the comment at the top)" >&2
	exit 2
fi

work=$(mktemp -d)
qpid=""
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The kernel package: its vmlinuz and qemu_fw_cfg.ko, not installed.
(cd "$work" && apt-get download -q "$kpkg" >/dev/null 2>&1) || {
	echo "make-taskdump: apt-get download $kpkg failed (network?)" >&2
	exit 2
}
mkdir "$work/pkg"
dpkg-deb --fsys-tarfile "$work"/"$kpkg"_*.deb | tar -x -C "$work/pkg" \
	"./boot/vmlinuz-$kver" "./lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko"
vmlinuz=$work/pkg/boot/vmlinuz-$kver
pkgver=$(dpkg-deb -f "$work"/"$kpkg"_*.deb Version)

# The build id of the kernel inside the bzImage (an LZ4 legacy frame) must
# be the debug vmlinux's.
off=$(grep -obUaP '\x02\x21\x4c\x18' "$vmlinuz" | head -1 | cut -d: -f1)
tail -c +$((off + 1)) "$vmlinuz" | lz4 -dc >"$work/vmlinux.raw" 2>/dev/null || true
bootid=$(readelf -n "$work/vmlinux.raw" 2>/dev/null | awk '/Build ID/ { print $3; exit }')
symid=$(readelf -n "$vmlinux" | awk '/Build ID/ { print $3; exit }')
rm -f "$work/vmlinux.raw"
if [ -z "$bootid" ] || [ "$bootid" != "$symid" ]; then
	echo "make-taskdump: $kpkg $pkgver has build id '${bootid:-unknown}', $vmlinux has '$symid': not the same build; stopping" >&2
	exit 1
fi
echo "make-taskdump: $kpkg $pkgver, build id $bootid (= $vmlinux)"

# The initramfs: busybox, qemu_fw_cfg.ko and /init.
root=$work/root
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
cp "$work/pkg/lib/modules/$kver/kernel/drivers/firmware/qemu_fw_cfg.ko" "$root/"
ln -s busybox "$root/bin/sh"
cat >"$root/init" <<EOF
#!/bin/sh
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
insmod /qemu_fw_cfg.ko
ip link set lo up
log=/tmp/tasks.txt
n() { i=0; while [ \$i -lt \$1 ]; do i=\$((i + 1)); echo \$i; done; }
for i in \$(n $N_SLEEP); do sleep 100000 & echo "sleep \$!" >>\$log; done
for i in \$(n $N_PIPECAT); do sleep 100000 | cat & echo "sleep|cat \$!" >>\$log; done
for i in \$(n $N_PIPESH); do sleep 100000 | sh -c 'read x' & echo "sleep|sh-read \$!" >>\$log; done
mkdir /tmp/fifo
for i in \$(n $N_FIFO); do mkfifo /tmp/fifo/\$i; cat /tmp/fifo/\$i & echo "cat-fifo \$!" >>\$log; done
for i in \$(n $N_WAIT); do sh -c 'sleep 100000; :' & echo "sh-wait \$!" >>\$log; done
for i in \$(n $N_LISTEN); do nc -l -p \$((9000 + i)) </dev/null >/dev/null & echo "nc-listen \$!" >>\$log; done
for i in \$(n $N_NCPAIR); do
	sleep 100000 | nc -l -p \$((9500 + i)) >/dev/null & echo "nc-pair-server \$!" >>\$log
done
sleep 2
for i in \$(n $N_NCPAIR); do
	sleep 100000 | nc 127.0.0.1 \$((9500 + i)) >/dev/null & echo "nc-pair-client \$!" >>\$log
done
for i in \$(n $N_BUSY); do
	sh -c 'while :; do :; done' & renice -n 19 -p \$! >/dev/null; echo "busy-sh \$!" >>\$log
	dd if=/dev/zero of=/dev/null bs=4096 & renice -n 19 -p \$! >/dev/null; echo "busy-dd \$!" >>\$log
done
sleep 5
echo "TASKDUMP: \$(ls -d /proc/[0-9]* | wc -l) tasks; started:" >/dev/console
cat \$log >/dev/console
sync
echo "TASKDUMP-SYSRQ-T" >/dev/console
echo t >/proc/sysrq-trigger
echo "TASKDUMP-READY" >/dev/console
while :; do sleep 100000; done
EOF
chmod +x "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"

# Boot; QMP on a unix socket, the console into serial.log.
rm -f "$out/serial.log" "$out/qmp.log"
qemu-system-x86_64 -accel tcg -cpu qemu64 -smp 2 -m 512 \
	-kernel "$vmlinuz" -initrd "$work/initrd.gz" \
	-append "console=ttyS0,115200 loglevel=8 log_buf_len=8M panic=-1" \
	-device vmcoreinfo -nographic -no-reboot -monitor none \
	-serial "file:$out/serial.log" -qmp "unix:$work/qmp.sock,server=on,wait=off" &
qpid=$!
echo "make-taskdump: booting (qemu pid $qpid, console $out/serial.log)"
t=0
until grep -q '^TASKDUMP-READY' "$out/serial.log" 2>/dev/null; do
	kill -0 "$qpid" 2>/dev/null || { echo "make-taskdump: qemu exited" >&2; exit 1; }
	t=$((t + 5))
	[ $t -gt 1800 ] && { echo "make-taskdump: no TASKDUMP-READY after 30 min" >&2; exit 1; }
	sleep 5
done
sleep 2

rm -f "$out"/vmcore.kdump-* "$out"/vmcore.elf
fmt=$(python3 - "$work/qmp.sock" "$work/vmcore.flat" "$out/qmp.log" <<'EOF'
import json, socket, sys, time
sock_path, dump, logp = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX)
s.connect(sock_path)
f = s.makefile("rw")
log = open(logp, "w")
def read():
    line = f.readline()
    log.write(line)
    return json.loads(line)
def cmd(name, args=None):
    f.write(json.dumps({"execute": name, "arguments": args or {}}) + "\n")
    f.flush()
    log.write("%s %s %s\n" % (time.strftime("%H:%M:%S"), name, json.dumps(args or {})))
    while True:
        m = read()
        if "error" in m:
            sys.exit("qmp %s: %s" % (name, m["error"]))
        if "return" in m:
            return m["return"]
read()
cmd("qmp_capabilities")
have = cmd("query-dump-guest-memory-capability")["formats"]
fmt = next(f for f in ("kdump-lzo", "kdump-zlib", "elf") if f in have)
cmd("stop")
cmd("dump-guest-memory", {"paging": False, "protocol": "file:" + dump, "format": fmt})
while True:
    st = cmd("query-dump")
    if st["status"] != "active":
        break
    time.sleep(1)
if st["status"] != "completed":
    sys.exit("dump %s" % st)
cmd("quit")
print(fmt)
EOF
)
wait "$qpid" || true
qpid=""

# QEMU 7.2 writes the kdump formats flattened (makedumpfile -F's stream);
# makedumpfile -R lays it out as the ordinary file. unwind reads both.
case $fmt in
elf) dumpfile=vmcore.elf; mv "$work/vmcore.flat" "$out/$dumpfile" ;;
*)
	dumpfile=vmcore.$fmt
	if command -v makedumpfile >/dev/null; then
		makedumpfile -R "$out/$dumpfile" <"$work/vmcore.flat" >/dev/null
	else
		dumpfile=$dumpfile.flat
		mv "$work/vmcore.flat" "$out/$dumpfile"
	fi
	;;
esac
sed -n '/^TASKDUMP: /,/^TASKDUMP-SYSRQ-T/p' "$out/serial.log" | tr -d '\r' >"$out/tasks.txt"
ln -sf "$vmlinux" "$out/vmlinux"
tasks=$(grep -c ' task:' "$out/serial.log" || true)
cat >"$out/README.txt" <<EOF
Made by scripts/make-taskdump.sh on $(date -u '+%Y-%m-%d %H:%M UTC').
Kernel: $kpkg $pkgver (build id $bootid), QEMU $(qemu-system-x86_64 --version | head -1 | awk '{ print $4 }') TCG, -smp 2 -m 512.
$dumpfile: QMP dump-guest-memory $fmt (paging false) of the stopped guest.
serial.log: the console; the sysrq t print (every task's stack, $tasks tasks) follows TASKDUMP-SYSRQ-T.
tasks.txt: the user tasks /init started (kind, pid of the pipeline's last task).
vmlinux: symlink to the debug vmlinux of the same build ($vmlinux).
  unwind bt --tasks --sym $out/vmlinux $out/$dumpfile
EOF
ls -la "$out"
echo "make-taskdump: $out/$dumpfile, $tasks tasks in the sysrq t print"
