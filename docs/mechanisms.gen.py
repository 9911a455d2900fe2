# Regenerates docs/MECHANISMS.md from real runs: python3 docs/mechanisms.gen.py (from the repository root).
import subprocess, os
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
K='fixtures/kernel/build/kernel-fp.elf'
def run(cmd):
    p=subprocess.run(cmd,shell=True,capture_output=True,text=True)
    out=(p.stdout+p.stderr).rstrip('\n')
    return "$ "+cmd+"\n"+out
def emu(name):
    subprocess.run('rm -rf /tmp/x',shell=True)
    return run(f'go run ./cmd/unwind emulate {name} -o /tmp/x -q')
def bt(snap,cpu=None):
    c=f' --cpu {cpu}' if cpu is not None else ''
    return run(f'go run ./cmd/unwind bt /tmp/x/{snap}.core --sym {K}{c}')
def block(s): return "```\n"+s+"\n```\n"
S=[]
S.append("""# The five mechanisms, runnable

Each mechanism from the project's source material (LKML threads on x86 NMI
and entry handling) runs on the entry-path emulator (`emu/`) in the fixture
kernel's own code (`fixtures/kernel/`, selected by `boot_args`), as a
scenario under `fixtures/scenarios/` with named invariants. Buggy variants
mark the invariant their bug breaks `expect=fail`: `unwind emulate` then
lists it as an "expected failure" and exits 0 when the bug shows (exit 1 if
the bug does *not* show, or if any other invariant fails). Every scenario
has a `sweep`: the run is repeated once per instruction of the mechanism's
window, the NMI (or IRQ) arriving one instruction later each time, and each
invariant is reported per point (`held at every point`, or `FAILED at k of
M points` with the first failing point). Format: `fixtures/scenarios/README.md`.

The traces below are real output (`go run ./cmd/unwind …` from the
repository root, fp kernel). `unwind bt` is the unwinder's view of a
snapshot; each snapshot's ground truth is in `/tmp/x/SNAP.truth.json`.
The unwinder is still being finished, so its output will improve; where it
differs from the truth today it says so (`UNRELIABLE`, `? ` lines), which is
the required behaviour for the corrupted stacks. Regenerate this file
from real runs with `python3 docs/mechanisms.gen.py`.

Tests: `go test ./emu -run TestMechanismSweeps` (every 5th point; add
`-sweep.full` for every point: 14 s) asserts that each buggy variant fails
its invariant by name at one point or more and that everything else holds
at every point; `TestShadowAgreesWithCFI` checks the ground truth against an
independent CFI unwind at every boundary of modes 0, 3, 4, 6, 8, 9, 10, 11.

Full-sweep figures (`go test ./emu -run TestMechanismSweeps -sweep.full -v`):

| scenario | window | points | result |
|---|---|---|---|
| idt-swap-noswap (1) | NMI, `asm_exc_int3` → kernel reports | 453 | `db-frame-survives` fails at 453 |
| idt-swap-buggy (2) | NMI, `asm_exc_int3` → `task_chain_1` | 518 | `idt-restored` fails at 518; others hold |
| idt-swap-fixed (3) | same | 553 | all hold at every point |
| patch-nmi-wt (4) | NMI to CPU 1, CPU 0 from taking the flag to clearing it | 434 | all hold |
| patch-nmi-wt-sweep (4) | same, kernel's own NMI off | 431 | all hold |
| patch-nmi-nowt-sweep (5) | same, kernel's own NMI off | 431 | `site-whole`, `cpu1-survives`, `patch-completes` fail at 77 |
| nested-nmi (6) | NMI, outer NMI's #PF → task reports | 1550 | `stack-intact`, `iret-resumes`, `nmi-never-nested` hold at every point |
| nested-nmi-naive (7) | same | 1110 | `nmi-never-nested` 1110, `stack-intact` 1110, `iret-resumes` 1091 |
| int3-call-gap (8) | NMI and IRQ, 110 insns from the int3 | 111 + 111 | `call-like` and all others hold |
| int3-call-tramp (9) | same | 111 + 111 | all hold |
| ptregs-partial (10) | NMI over `entry_SYSCALL_64` → `do_syscall_64` | 42 | all hold |
| ptregs-marker (0) | marker IRQ 0xed over 60 insns of the task chain | 61 | all hold |

## How the ground truth treats legitimate "iret elsewhere"

The shadow stack (`emu/shadow.go`) follows a handler's writes to its own
pt_regs: while the innermost entry's C handler runs, a store to its
pt_regs ip/sp re-reads them, so the interrupted frame is what `iretq` will
resume — an exception-table fixup (same function, fixup RIP); int3 call
emulation (RIP = the first byte of a function, RSP = the interrupted RSP −
8: a call frame {target, [rsp], rsp+8} is inserted, exactly as if the call
had executed); an int3 trampoline (`int3_tramp_*`: a frame {trampoline,
per-CPU slot's return address, rsp}, which the trampoline's push + `jmp`
turns into the target's call frame). An `iretq` into the same entry stub
(`repeat_nmi`) keeps the entry frame. The `iret-resumes` invariant flags
every other `iretq` that does not resume where it interrupted — the
corrupted returns of the buggy variants.
""")

S.append("""## 1. The debug-stack IDT swap (modes 1, 2, 3)

**What goes wrong.** #DB (and, in Linux 3.x, #BP) and NMI run on IST
stacks. A breakpoint hit inside an NMI that interrupted a debug trap is
delivered through the #DB IST entry again, which reloads RSP to the top of
the #DB stack and overwrites the first trap's frame (mode 1). The fix loads,
while the NMI runs over the debug stack, a copy of the IDT whose #DB/#BP
gates have no IST, under a per-CPU counter. The historical bug (mode 2): on
the way out it reloads "the default IDT", losing an IDT swapped in
meanwhile — here the task's *tracing* IDT. The fix (mode 3) saves the IDT in
force on the first entry (re-checked after the counter increment) and
restores a copy of exactly that.

**What the fixture kernel does.** `idt_test` loads `trace_idt_table`, then
hits `int3` in `idt_int3_site` (#BP on IST3 in modes 1–3); `exc_int3` sends
itself an NMI; `default_do_nmi` calls `debug_idt_enter` (mode 2: `_buggy`,
3: `_fixed`; mode 1: nothing) and hits another `int3` in
`nmi_breakpoint_site`; `debug_idt_exit` on the way out. Invariants:
`db-frame-survives` (`no-frame-clobber int3 debug`), `idt-restored` (IDTR
after the outermost NMI/#DB/#BP returns equals IDTR at its delivery),
`stack-intact`, `iret-resumes`, `ptregs-findable`.

Mode 2, the buggy toggle — `idt-restored` fails by name, at every point of
the sweep:
""")
S.append(block(emu('idt-swap-buggy')))
S.append("The int3 inside the NMI inside the first int3 (snapshot `bp-in-nmi`): with the debug IDT loaded the second #BP is delivered on the NMI stack, and the first #BP's frame on the #DB stack survives:\n")
S.append(block(bt('bp-in-nmi')))
S.append("Mode 1, no swap — the second #BP resets IST3 over the first (`db-frame-survives` fails at every point); the unwinder sees the #DB stack entered twice and stops, flagged:\n")
S.append(block(emu('idt-swap-noswap')))
S.append(block(bt('bp-in-nmi')))
S.append("Mode 3, fixed — every invariant holds at each of the 553 arrival points:\n")
S.append(block(emu('idt-swap-fixed')))
S.append(block(bt('after-bp')))

S.append("""## 2. NMI-safe code modification (modes 4, 5; 2 CPUs)

**What goes wrong.** CPU 0 rewrites a 5-byte instruction at a call site
(a NOP ⇄ `call patch_target`) byte by byte while CPU 1 may execute it in an
NMI handler; an NMI that runs the site mid-write executes a torn
instruction. The fix: fill an IP buffer and a code buffer, set a
"modifying" flag, wait for running NMIs, write, clear the flag, wait again;
an NMI entering while the flag is set writes the same bytes itself first.

**What the fixture kernel does.** `do_ftrace_mod_code` (`mod_code_ip`,
`mod_code_newcode`, flag bit 30 of `nmi_running`,
`wait_for_nmi_and_set_mod_flag`, `text_write_bytes` with a delay between
bytes, `clear_mod_flag`, `wait_for_nmi`); CPU 1's NMI runs
`ftrace_nmi_enter` (write-through in mode 4 only) → `patch_site_func` →
`ftrace_nmi_exit`. Invariants: `site-whole` (`site-bytes patch_site
0f1f440000 call:patch_target`: whenever a CPU executes the site its bytes
are the old or the new instruction), `cpu1-survives`, `patch-completes`
(both CPUs exit 0). The sweep sends CPU 1 an NMI at each instruction CPU 0
retires from taking the flag to clearing it.

Mode 4, write-through — holds at all 434 points:
""")
S.append(block(emu('patch-nmi-wt')))
S.append("CPU 1 inside its NMI at the site while CPU 0 is mid-patch (snapshot `nmi-at-site`, CPU 1):\n")
S.append(block(bt('nmi-at-site',1)))
S.append("Mode 5, no write-through — the plain run (the kernel's own in-window NMI) shows the torn instruction:\n")
S.append(block(emu('patch-nmi-nowt')))
S.append("and the sweep (kernel's own NMI off, one swept NMI per run) shows exactly which arrival points hit the window — 77 of 431:\n")
S.append(block(emu('patch-nmi-nowt-sweep')))
S.append("The same sweep with the write-through (mode 4, kernel's own NMI off) holds at every one of the 431 points:\n")
S.append(block(emu('patch-nmi-wt-sweep')))

S.append("""## 3. Nested NMIs (modes 6, 7)

**What goes wrong.** A #PF (or #DB) inside an NMI handler returns with
`iretq`, which unblocks NMIs; the next NMI is delivered through IST2 while
the CPU is still on the NMI stack, RSP is reset to the top, and the new
hardware frame overwrites the outer NMI's. Linux's protection (mode 6)
keeps an "NMI executing" word and copies of the iret frame on the NMI
stack: the nested NMI sees it, points the outer's "iret" copy at
`repeat_nmi` and returns; the outer repeats and returns through its saved
copy. The naive entry (mode 7) runs the nested NMI on top of the outer's
frames and returns through a clobbered frame.

**What the fixture kernel does.** `nested_nmi_test` sends itself an NMI;
in the first round `nmi_fault_chain` sends another (latched) and reads
`0xdead000` (`probe_read`, fixed up through `__ex_table`). Invariants:
`stack-intact` (no `iretq` through a hardware frame a later delivery
overwrote), `iret-resumes`, `nmi-never-nested` (the kernel's console
reports max depth 1); in mode 6 `no-frame-clobber nmi` is `expect=fail`:
the IST reset happens, and is handled. The sweep adds an NMI at every
instruction from the outer NMI's #PF until the task reports.

Mode 6 — the protection holds at each of 1550 arrival points:
""")
S.append(block(emu('nested-nmi')))
S.append("The outer NMI resuming at `repeat_nmi` after the nested one asked it to repeat (snapshot `repeat-nmi`):\n")
S.append(block(bt('repeat-nmi')))
S.append("Mode 7 — naive: `stack-intact`, `iret-resumes` and `nmi-never-nested` fail by name:\n")
S.append(block(emu('nested-nmi-naive')))
S.append("The nested handler running over the outer's overwritten frames (snapshot `nested-handler`): the unwinder reports the stack as inconsistent (`UNRELIABLE`, exit 3) instead of a confident wrong trace:\n")
S.append(block(bt('nested-handler')))

S.append("""## 4. int3 handlers that emulate a call (modes 8, 9)

**What goes wrong.** While a 5-byte call site is being patched its first
byte is `int3`; a CPU hitting it must behave as if the call executed. The
#BP handler must push the return address on the *interrupted* stack (below
its own iret frame, so the entry leaves a gap) and resume at the call's
target — or, without a gap, resume at a trampoline that pushes the return
address kept in a per-context save slot (normal, IRQ, softirq, NMI, with a
depth counter for nesting).

**What the fixture kernel does.** `int3_test` writes `0xcc` at `int3_site`
and calls `int3_site_func`; IRQ, softirq and NMI handlers call it too.
Mode 8: `poke_int3_handler` → `int3_emulate_call` (push `int3_site+5` into
the gap `asm_exc_int3` left, `regs->ip = int3_target`). Mode 9: fill
`percpu.int3_slots[ctx]`, resume at `int3_tramp_<ctx>`. Invariant
`call-like int3_target site=int3_site`: at every arrival at `int3_target`,
`[rsp]` is `int3_site+5` and the ground truth's frames are a call frame of
`int3_target` (CFA rsp+8) called from `int3_site_func` — exactly a real
call. The sweeps move an NMI and an IRQ over the 110 instructions from the
int3 (entry, handler, `iretq`, trampoline, the target's first instructions).

Mode 8:
""")
S.append(block(emu('int3-call-gap')))
S.append("Right after the emulation (snapshot `after-emulation`): the trace is that of a real call from the site:\n")
S.append(block(bt('after-emulation')))
S.append("Mode 9:\n")
S.append(block(emu('int3-call-tramp')))
S.append("At `int3_tramp_normal+0` (snapshot `tramp-entry`) the return address is only in the per-CPU slot, so CFI says RIP is undefined: the unwinder stops there, flagged (the ground truth continues with `int3_site_func` at `int3_site+5`):\n")
S.append(block(bt('tramp-entry')))

S.append("""## 5. pt_regs for frame-pointer unwinders, and partial pt_regs (modes 0, 10)

**What goes wrong.** An rbp-chain walker cannot cross an entry unless the
entry leaves a link to its `pt_regs`; and an exception taken before the
entry code has built a `pt_regs` leaves only the hardware iret frame.

**What the fixture kernel does.** Every entry stub calls its C handler with
`%rbp = pt_regs + 1` (Linux's `ENCODE_FRAME_POINTER`), except vector 0xed
(`asm_sysvec_marker_interrupt`), which pushes a record {interrupted rbp,
`ret_from_entry_marker`} just below the pt_regs. Invariant
`ptregs-findable` checks one or the other at every handler call (it is
also in every other mechanism scenario). Mode 10: user code sets TF and
executes `syscall`; FMASK leaves TF set, so the single-step #DB arrives
right after `syscall`, at `entry_SYSCALL_64+0` (before `swapgs`), with CS
0x10 but RSP still the user's: the syscall has no pt_regs yet, only the
iret frame the #DB pushed (a partial frame; the ground truth's syscall
entry has `regs_addr` 0).

Marker IRQ swept over the deep task chain:
""")
S.append(block(emu('ptregs-marker')))
S.append(block(bt('marker-handler')))
S.append("Mode 10, the partial frame (snapshot `partial-db`):\n")
S.append(block(emu('ptregs-partial')))
S.append(block(bt('partial-db')))
open('docs/MECHANISMS.md','w').write("\n".join(S))
