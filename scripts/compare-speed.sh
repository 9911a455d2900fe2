#!/bin/sh
# compare-speed.sh: time whole processes of unwind, gdb and eu-stack on the
# same inputs in the same run: CPU time (user+sys) and peak RSS from
# /usr/bin/time, page cache warm (every command runs once first, unmeasured,
# except unwind's "first" run, which starts with an empty debug cache).
# Prints one line per tool and input: the median of RUNS runs.
#
#   scripts/compare-speed.sh   (RUNS=5 by default; DEEP_EU_STACK=1 adds
#                               eu-stack on the deep core, minutes per run;
#                               ONLY=deep,small,vmcore,prod measures only
#                               the inputs named: deep, small, vmcore,
#                               prod, tasks300)
#
# Runs of a few milliseconds (the small core) are below /usr/bin/time's
# 10 ms steps: where `perf stat` can count task-clock (Debian: linux-perf),
# those rows are the mean CPU time of FINE_RUNS runs (100 by default) as
# perf stat -r gives it, all threads counted, in milliseconds.
#
# Needs go, zstd, /usr/bin/time; gdb and eu-stack (Debian: gdb, elfutils)
# are measured when installed. The small dynamic core needs the "user"
# corpus (~/.cache/unwind-corpus, see internal/corpus), the vmcore the
# "kernel" corpus, tasks300 the dump scripts/make-taskdump.sh makes (crash
# beside it when installed); inputs that are missing are skipped with a note.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$here"
# Static, as README.md's install line builds it: the default cgo build
# links libc for the net package (the flag library imports it), which
# costs every run about 1 ms of dynamic loading before main.
CGO_ENABLED=0 go build -o "$work/unwind" ./cmd/unwind
U=$work/unwind
zstd -dq fixtures/deepcore/deep.core.zst -o "$work/deep.core"
cache=${HOME}/.cache/unwind-corpus

# report NAME: the medians of the runs in $work/t ("user sys maxrss-KB").
report() {
	m=$(((runs + 1) / 2))
	cpu=$(awk '{ printf "%.3f\n", $1 + $2 }' "$work/t" | sort -n | sed -n "${m}p")
	rss=$(awk '{ printf "%.1f\n", $3 / 1024 }' "$work/t" | sort -n | sed -n "${m}p")
	printf "%-44s %8s s CPU %8s MB peak RSS\n" "$1" "$cpu" "$rss"
}

# measure NAME CMD...: median CPU seconds and peak RSS of RUNS runs.
measure() {
	name=$1
	shift
	"$@" >/dev/null 2>&1 || true
	i=0
	: >"$work/t"
	while [ $i -lt "$runs" ]; do
		/usr/bin/time -f "%U %S %M" -o "$work/one" "$@" >/dev/null 2>&1 || true
		tail -1 "$work/one" >>"$work/t"
		i=$((i + 1))
	done
	report "$name"
}

# measure_first NAME CMD...: as measure, each run with an empty debug cache.
measure_first() {
	name=$1
	shift
	i=0
	: >"$work/t"
	while [ $i -lt "$runs" ]; do
		rm -rf "$work/dcache"
		UNWIND_DEBUG_CACHE=$work/dcache /usr/bin/time -f "%U %S %M" -o "$work/one" "$@" >/dev/null 2>&1 || true
		tail -1 "$work/one" >>"$work/t"
		i=$((i + 1))
	done
	report "$name"
}

# fine NAME [PRE] -- CMD...: as measure, for runs of a few milliseconds:
# the mean task-clock of FINE_RUNS runs from perf stat, PRE (a shell
# command, or empty) run before each; falls back to measure (or
# measure_first when PRE is given) where perf cannot count task-clock.
fine_runs=${FINE_RUNS:-100}
have_perf=
if command -v perf >/dev/null && perf stat -x, -e task-clock true >/dev/null 2>&1; then
	have_perf=1
fi
fine() {
	name=$1
	pre=$2
	shift 3
	if [ -z "$have_perf" ]; then
		if [ -n "$pre" ]; then measure_first "$name" "$@"; else measure "$name" "$@"; fi
		return
	fi
	[ -n "$pre" ] || "$@" >/dev/null 2>&1 || true
	if [ -n "$pre" ]; then
		sh -c "$pre"
		UNWIND_DEBUG_CACHE=$work/dcache perf stat -x, -o "$work/perf" -e task-clock -r "$fine_runs" \
			--pre "$pre" "$@" >/dev/null 2>&1 || true
	else
		perf stat -x, -o "$work/perf" -e task-clock -r "$fine_runs" "$@" >/dev/null 2>&1 || true
	fi
	if [ -n "$pre" ]; then
		sh -c "$pre"
		UNWIND_DEBUG_CACHE=$work/dcache /usr/bin/time -f "%M" -o "$work/one" "$@" >/dev/null 2>&1 || true
	else
		/usr/bin/time -f "%M" -o "$work/one" "$@" >/dev/null 2>&1 || true
	fi
	awk -F, -v name="$name" -v rss="$(tail -1 "$work/one")" -v n="$fine_runs" \
		'/task-clock/ { printf "%-44s %8.2f ms CPU (mean of %d, +-%s) %6.1f MB peak RSS\n", name, $1, n, $4, rss / 1024 }' "$work/perf"
}

# want INPUT: whether ONLY (a comma list, empty for all) names INPUT.
want() {
	case ",${ONLY:-$1}," in
	*",$1,"*) return 0 ;;
	esac
	return 1
}

if want deep; then
	echo "== 100,000-frame core (fixtures/deepcore)"
	measure "unwind bt (text)" "$U" bt "$work/deep.core" --exe fixtures/deepcore/deep --max-frames 0
	measure "unwind bt -o json" "$U" bt "$work/deep.core" --exe fixtures/deepcore/deep --max-frames 0 -o json
	command -v gdb >/dev/null && measure "gdb -batch -ex bt (args off)" gdb -nx -batch \
		-ex 'set print frame-arguments none' -ex 'set pagination off' -ex bt fixtures/deepcore/deep "$work/deep.core"
	# eu-stack takes minutes on this core (70-405 s measured): only on request.
	if [ -n "${DEEP_EU_STACK:-}" ] && command -v eu-stack >/dev/null; then
		measure "eu-stack" eu-stack --core "$work/deep.core" -e fixtures/deepcore/deep
	fi
fi

user=$(ls -d "$cache"/user-*/user 2>/dev/null | head -1 || true)
if ! want small; then
	:
elif [ -n "$user" ]; then
	echo "== small dynamic core, libc's separate compressed debug file (user corpus b_abort/O2cfi)"
	root=$work/root
	mkdir -p "$root/corpus" "$root/usr/lib/x86_64-linux-gnu"
	ln -s "$user" "$root/corpus/user"
	for f in libc.so.6 libc.so.6.debug ld-linux-x86-64.so.2 ld-linux-x86-64.so.2.debug; do
		ln -s "$user/lib/$f" "$root/usr/lib/x86_64-linux-gnu/$f"
	done
	core=$user/b_abort/O2cfi/core
	fine "unwind bt (first run: empty debug cache)" "rm -rf $work/dcache" -- "$U" bt "$core" --sysroot "$root"
	# Warm: the cache one first run leaves (prefixes of libc's sections),
	# as a user's second run finds it.
	rm -rf "$work/wcache"
	UNWIND_DEBUG_CACHE=$work/wcache "$U" bt "$core" --sysroot "$root" >/dev/null 2>&1 || true
	export UNWIND_DEBUG_CACHE="$work/wcache"
	fine "unwind bt (warm debug cache)" "" -- "$U" bt "$core" --sysroot "$root"
	unset UNWIND_DEBUG_CACHE
	fine "unwind --help (start-up alone)" "" -- "$U" --help
	if command -v eu-stack >/dev/null; then
		# eu-stack has no sysroot: it reads the libraries the core names
		# (the corpus's copies are the same files, see BUILD-IDS.txt) and
		# finds their debug files by build id, under .build-id/ of the
		# debuginfo path, as unwind finds libc's compressed debug file.
		dbg=$work/debug
		while read -r f _ id; do
			[ -f "$user/lib/$f.debug" ] || continue
			d=$(echo "$id" | cut -c1-2)
			mkdir -p "$dbg/.build-id/$d"
			ln -s "$user/lib/$f.debug" "$dbg/.build-id/$d/$(echo "$id" | cut -c3-).debug"
		done <"$user/lib/BUILD-IDS.txt"
		fine "eu-stack" "" -- eu-stack --core "$core" -e "$user/b_abort/O2cfi/bin" --debuginfo-path="$dbg"
		fine "eu-stack -s -i" "" -- eu-stack -s -i --core "$core" -e "$user/b_abort/O2cfi/bin" --debuginfo-path="$dbg"
	fi
	command -v gdb >/dev/null && measure "gdb -batch -ex bt (args off)" gdb -nx -batch \
		-ex "set sysroot $root" -ex "set debug-file-directory $root/usr/lib/debug" \
		-ex 'set print frame-arguments none' -ex bt "$user/b_abort/O2cfi/bin" "$core"
else
	echo "== small dynamic core: no user corpus under $cache (skipped)"
fi

kernel=$(ls -d "$cache"/kernel-*/kernel 2>/dev/null | head -1 || true)
vmcore=$(ls "$cache"/vmcores/nmibt-[0-9]*.vmcore 2>/dev/null | head -1 || true)
if ! want vmcore; then
	:
elif [ -n "$kernel" ] && [ -n "$vmcore" ]; then
	echo "== vmcore, every CPU, with vmlinux (kernel corpus nmibt)"
	measure_first "unwind bt (first run)" "$U" bt "$vmcore" --sym "$kernel/fp/vmlinux"
	measure "unwind bt (warm)" "$U" bt "$vmcore" --sym "$kernel/fp/vmlinux"
else
	echo "== vmcore: no kernel corpus nmibt capture (skipped)"
fi

prod=$(ls -d "$cache"/prod-*/prod-dev 2>/dev/null | head -1 || true)
if want prod && [ -n "$prod" ]; then
	echo "== prod kdump, every task (bt --tasks)"
	measure "unwind bt --tasks" "$U" bt "$prod/kdump-sysrqc/vmcore.kdump-lzo" \
		--sym "$prod/kernel/vmlinux-6.1.0-47-cloud-amd64" --tasks
fi

# The ~300-task dump of the same kernel that scripts/make-taskdump.sh makes
# (UNWIND_TASKDUMP, else ~/.cache/unwind-corpus/taskdump): issue 17's size.
tdir=${UNWIND_TASKDUMP:-${XDG_CACHE_HOME:-$HOME/.cache}/unwind-corpus/taskdump}
tdump=""
for f in vmcore.kdump-lzo vmcore.kdump-zlib vmcore.kdump-lzo.flat vmcore.kdump-zlib.flat vmcore.elf; do
	[ -f "$tdir/$f" ] && tdump=$tdir/$f && break
done
tsym=$tdir/vmlinux
[ -f "$tsym" ] || tsym=${prod:+$prod/kernel/vmlinux-6.1.0-47-cloud-amd64}
if ! want tasks300; then
	:
elif [ -n "$tdump" ] && [ -n "$tsym" ] && [ -f "$tsym" ]; then
	echo "== ~300-task dump, every task (bt --tasks; $tdump)"
	measure_first "unwind bt --tasks (first run)" "$U" bt "$tdump" --sym "$tsym" --tasks
	measure "unwind bt --tasks (warm)" "$U" bt "$tdump" --sym "$tsym" --tasks
	# crash 8.0.2 opens this dump but its foreach bt finds only the idle
	# tasks ("active task ... not found in PID hash"); drgn 0.0.22 cannot
	# open QEMU's kdump files (no KDUMP_ATTR_ARCH_NAME). Timed beside, for
	# what opening the dump and vmlinux costs them, not as equal work.
	if command -v crash >/dev/null; then
		printf 'foreach bt\nquit\n' >"$work/crash.in"
		measure "crash foreach bt (finds only idle tasks)" crash -s "$tsym" "$tdump" -i "$work/crash.in"
	fi
else
	echo "== ~300-task dump: none in $tdir (make it with scripts/make-taskdump.sh; skipped)"
fi
