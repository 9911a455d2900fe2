package unwind

import (
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/symbols"
)

// FrameKind says how a frame's registers came to be on the stack. Its String
// form is the "kind" field of the JSON output.
type FrameKind uint8

// Frame kinds.
const (
	// KindCall is an ordinary frame: its PC is a return address (or, for frame 0,
	// the stopped RIP).
	KindCall FrameKind = iota
	// KindInterrupted is a frame resumed from a pt_regs (or iret frame) that an
	// interrupt, exception, NMI or syscall entry saved; Entry names the entry.
	KindInterrupted
	// KindSignal is a user frame resumed from the sigcontext of an rt_sigframe
	// (or a CFI signal frame): the code the signal interrupted.
	KindSignal
	// KindScan is a guess: a text address found by scanning the stack, printed
	// with "? " in text output. It is never reliable.
	KindScan
)

var frameKindNames = [...]string{KindCall: "call", KindInterrupted: "interrupted", KindSignal: "signal", KindScan: "scan"}

// String returns the JSON name of the kind: "call", "interrupted",
// "signal" or "scan".
func (k FrameKind) String() string {
	if int(k) < len(frameKindNames) {
		return frameKindNames[k]
	}
	return "unknown"
}

// Method is a bit set of unwinding strategies. A Frame's Method has exactly
// one bit: the strategy that recovered that frame from the frame below it.
// Options.Methods selects which strategies a walk may use.
type Method uint8

// Strategies. Pass an OR of them in Options.Methods; zero means all.
const (
	// MethodCFI steps with DWARF call-frame information (.eh_frame/.debug_frame).
	MethodCFI Method = 1 << iota
	// MethodFP steps along the rbp chain, helped by prologue/epilogue analysis of
	// the function's machine code; it also covers a call through a NULL or
	// non-text pointer (the caller's return address at [rsp]).
	MethodFP
	// MethodPtRegs crosses entry frames: encoded rbp, pt_regs and iret frames at
	// the top of a stack.
	MethodPtRegs
	// MethodSignal crosses user-space rt_sigframes found by their __restore_rt
	// trampoline.
	MethodSignal
	// MethodScan is the last resort: validated return addresses found by scanning
	// the stack.
	MethodScan
	// MethodRegs marks frame 0, which comes from the initial registers. It is not
	// a strategy and is ignored in Options.Methods.
	MethodRegs
	// MethodORC steps with the kernel's ORC tables (Code implementing
	// ORCSource), as Linux's own unwinder does: call frames, and the
	// pt_regs and iret frames of entry code. It is tried first in kernel
	// walks whose Code has ORC.
	MethodORC

	allMethods = MethodCFI | MethodFP | MethodPtRegs | MethodSignal | MethodScan | MethodORC
)

// String returns the JSON name of a single method ("cfi", "fp", "ptregs",
// "signal", "scan", "regs", "orc"); a set prints as names joined by "|".
func (m Method) String() string {
	names := [...]string{"cfi", "fp", "ptregs", "signal", "scan", "regs", "orc"}
	s := ""
	for i, n := range names {
		if m&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// Frame is one frame of a backtrace. Frame 0 is the stopped code; each later
// frame is the caller (or the interrupted code) of the one before it.
//
// The JSON output maps one to one: pc=PC, sp=SP, cfa=CFA, function=Function,
// offset=PC-Sym.Addr, size=Sym.Size, module=Sym.Module, file/line, inlined,
// kind=Kind, entry=Entry, partial, regs_addr=RegsAddr, stack=Stack.Kind,
// method=Method, reliable, regs=Regs.
type Frame struct {
	// Index is the frame's position in the trace, 0 for the innermost.
	Index int
	// PC is the frame's program counter: the stopped or interrupted RIP, or
	// a return address.
	PC uint64
	// LookupPC is the address to use for symbol, line and CFI lookups: PC-1
	// for a return address (so a call at the end of a function is attributed
	// to it), PC itself for frame 0 and for interrupted and signal frames.
	LookupPC uint64
	// SP is the frame's stack pointer (the caller's RSP after the return,
	// that is the callee's CFA; for interrupted frames the saved RSP).
	SP uint64
	// CFA is this frame's canonical frame address, as DWARF, gdb and
	// delve mean it: the value of the caller's SP at the call that made
	// this frame (for a frame whose caller was interrupted, the entry
	// code's convention). A walk computes it when it steps past the frame,
	// after Next has yielded it: Next leaves CFA 0, and FillCFA sets it on
	// the frames of a walk once the step past each was made. It stays 0
	// when unknown: the outermost frame, a frame whose caller was found
	// through a pt_regs or signal frame, or a frame the walk could not
	// step past.
	CFA uint64
	// calleeCFA is the CFA of the frame before this one (its callee),
	// computed by the step that made this frame; FillCFA moves it there.
	calleeCFA uint64
	// Slot is the stack address PC was read from (the return-address slot,
	// the scanned word, or the pt_regs ip field), 0 for frame 0. Text
	// output interleaves "? " scan lines with real frames by this address.
	Slot uint64

	// Sym is the ELF symbol containing LookupPC; SymOK says whether one was
	// found.
	Sym   symbols.Sym
	SymOK bool
	// Function is the source-level function name: the inlined function for
	// an inlined frame, otherwise Sym.Name (empty when unknown).
	Function string
	// File and Line are the source position of LookupPC, when known.
	File string
	Line int
	// Inlined marks a function that the compiler inlined into its caller.
	// A PC inside inlined code gives one frame per source-level function,
	// innermost first: each inlined function (Inlined true), then the
	// function it was inlined into at the same PC, registers and stack,
	// down to the function that holds the machine code (Inlined false),
	// as delve's Stackframe.Inlined, gdb's inline frames and drgn's
	// is_inline mark them. Count Inlined false frames for the machine's
	// own call chain.
	Inlined bool

	// Kind says how the frame's registers came to be on the stack.
	Kind FrameKind
	// Entry names the entry that interrupted the frame ("nmi", "irq:236",
	// "page_fault", "debug", "int3", "syscall", "double_fault",
	// "general_protection", "signal:11"...). Empty for Call and scan frames.
	Entry string
	// Partial is set when only the hardware iret frame (RIP, CS, RFLAGS,
	// RSP, SS) was valid; the general-purpose registers in Regs are unknown.
	Partial bool
	// RegsAddr is the address of the pt_regs, iret frame or signal
	// ucontext the frame's registers were read from (0 for other frames).
	RegsAddr uint64
	// PtRegs holds the decoded pt_regs of a KindInterrupted frame (only the
	// iret fields when Partial). For a signal frame it holds the sigcontext
	// registers in pt_regs order (OrigAX holds the trap number).
	PtRegs ptregs.PtRegs
	// Regs are the frame's registers with validity bits: RIP and RSP are
	// always valid; others as far as the strategy could recover them.
	Regs ptregs.Regs
	// Stack is the stack the frame lies on: for frame 0 and interrupted
	// frames the stack SP points into, for call frames the one holding the
	// return-address slot. Kind StackUnknown when no bounds were given.
	Stack Stack
	// Method is the strategy that recovered this frame from the one below.
	Method Method
	// Reliable says the frame came from CFI, a validated frame-pointer step
	// or a validated entry frame, and no earlier frame was a guess. The
	// cursor yields it as the walk judges it then: a later finding of a
	// corrupt stack can invalidate it (Unwinder.Invalidated).
	Reliable bool

	// nullCall marks an interrupted frame whose pt_regs a cross-checked
	// signal found (an encoded rbp at SP in an entry stub, a marker, an
	// entry stub's CFI signal frame) and whose RIP is 0: a call through a
	// NULL pointer, its caller's return address at [sp].
	nullCall bool
}

// Interrupted reports whether the frame was resumed from saved registers
// rather than reached by a return: an KindInterrupted or KindSignal. Its PC is
// the exact instruction that was about to run, so LookupPC equals PC.
func (f *Frame) Interrupted() bool { return f.Kind == KindInterrupted || f.Kind == KindSignal }

// Offset returns PC's offset from the start of its symbol, 0 when the symbol
// is unknown.
func (f *Frame) Offset() uint64 {
	if !f.SymOK {
		return 0
	}
	return f.PC - f.Sym.Addr
}
