package unwind

import (
	"sync"

	"github.com/unwind-dev/unwind/symbols"
)

// Code is what the unwinder needs to know about the target's code: symbols,
// CFI, which addresses are text, and the machine code itself (for prologue
// analysis and call-site validation). *symbols.Set implements it.
//
// Code may additionally implement LineSource, in which case frames get
// source lines and inlined callers.
type Code interface {
	// Symbol returns the function containing pc.
	Symbol(pc uint64) (symbols.Sym, bool)
	// FindCFI fills row with the CFI rules in force at pc; an error that
	// wraps cfi.ErrNoFDE means there are none.
	FindCFI(pc uint64, row *symbols.CFIRow) error
	// IsText reports whether pc lies in executable code.
	IsText(pc uint64) bool
	// CodeAt returns the code bytes from pc to the end of its section, nil
	// when unknown. The unwinder never modifies them.
	CodeAt(pc uint64) []byte
}

// LineSource is the optional part of Code that resolves source lines:
// Lines appends to buf[:0] the source frames at pc, innermost (inlined)
// function first, the physical function last.
type LineSource interface {
	Lines(pc uint64, buf []symbols.Line) []symbols.Line
}

// SigInfoSource is the optional part of Code that tells SA_SIGINFO
// handlers from plain ones (*symbols.Set implements it from DWARF). The
// kernel fills a signal frame's siginfo only for an SA_SIGINFO handler, so
// a signal frame's Entry carries the signal number ("signal:11") only when
// the handler that returns through it is known to be one.
type SigInfoSource interface {
	TakesSigInfo(pc uint64) (siginfo, known bool)
}

// ORCSource is the optional part of Code that holds Linux ORC tables
// (*symbols.Set implements it: a vmlinux's sections, tables read from a
// dump with Set.AddORC). FindORC returns the entry in force at pc;
// HasORC says whether there are any tables, and then a kernel walk tries
// ORC (MethodORC) before every other strategy.
type ORCSource interface {
	FindORC(pc uint64) (symbols.ORCEntry, bool)
	HasORC() bool
}

// Options configures a walk. The zero value (or a nil *Options) walks with
// every strategy, no symbols, no stack bounds and 256 frames at most.
type Options struct {
	// Code supplies symbols, CFI and machine code. Without it only the
	// frame-pointer chain can be followed, unvalidated.
	Code Code
	// Stacks names the stack every address lies on. With it, frame-pointer
	// steps are bounds-checked, stack switches are checked to go outward
	// (NMI/#DB/#DF/#MC → IRQ → task → altstack → user), and the ends of
	// stacks are recognised.
	//
	// In a user walk a stack of kind StackUnknown is one the thread runs
	// on that the oracle cannot name (a sigaltstack, a coroutine's stack);
	// frames on it are StackUser, except on a sigaltstack. The walk learns
	// the sigaltstack (StackAltSignal, the bounds uc_stack gives) from the
	// rt_sigframes it crosses (MethodSignal) and, so that the handler's
	// frames before the first one are labelled too, when frame 0's SP is
	// on a StackUnknown stack or on none, from the first rt_sigframe above
	// it whose uc_stack holds that SP.
	Stacks StackBounds
	// Methods restricts the strategies used; zero means all of them.
	Methods Method
	// MaxFrames bounds the trace (default 256, counting inlined frames).
	MaxFrames int
	// Kernel says the registers are a kernel context: pt_regs are looked
	// for, and a pt_regs whose CS is a user selector ends the walk ("user
	// mode") after its frame.
	Kernel bool
	// Incremental makes a reused Unwinder keep its last walk, and replay
	// the rest of it from the first frame where a new walk is in the same
	// state as the last one was and memory still holds every byte the
	// last walk's remaining steps read: for unwinding a live target that
	// changes little between walks (an emulated CPU at every instruction
	// boundary). The frames are exactly those of a walk from scratch. It
	// costs a copy of every frame, and is ignored when Code provides
	// source lines.
	Incremental bool
	// EntryMarkers are the addresses of marker functions: fake return
	// addresses that the code being unwound has its entry stubs push,
	// with the interrupted rbp, right below a pt_regs before they call a
	// handler, pointing rbp at that two-word record, so that a
	// frame-pointer walk finds the pt_regs. Linux has none; a kernel
	// that uses the scheme names its marker symbols, and its loader
	// passes their addresses here (emu.EntryConventions does it for the
	// fixture kernel).
	EntryMarkers []uint64
	// EntryVectors gives the vector of the entry stubs (by symbol name)
	// whose vector the unwinder cannot tell from Linux's names
	// (asm_sysvec_NAME for Linux's system vectors, orig_ax for the
	// others): a stub listed here names its frames' entry "irq:VECTOR".
	EntryVectors map[string]int
	// ForkReturnSlot is, for a kernel task that has never run, the stack
	// address of the return-address word of the inactive_task_frame
	// copy_thread left at its thread.sp: ret_from_fork is planted there
	// without a call, and a frame whose return address is read from this
	// slot and is the start of ret_from_fork (ret_from_fork_asm) passes
	// the call-site check by rule. 0: no such slot.
	ForkReturnSlot uint64
	// CodeCache, when set, keeps what the walk learns from the Code alone
	// (which addresses are instruction boundaries of their function) and
	// the call-site verdicts (callSiteCheck), each with the bytes before
	// the return address it was decoded from, for every Unwinder given
	// the same cache: the threads or CPUs of one dump, unwound one after
	// another or at once, then analyse each function and check each call
	// site once instead of once per walk. Use one cache per Code (and
	// per Kernel setting).
	CodeCache *CodeCache
}

// CodeCache is what walks over the same Code share (Options.CodeCache).
// It is safe for concurrent use and holds at most a bounded number of
// entries; the zero value is ready to use.
type CodeCache struct {
	boundary sharedMap[uint64, bool] // address → is an instruction boundary of its function
	sites    sharedMap[siteKey, siteVal]
	calls    sharedMap[callKey, bool]
}

// siteKey is a return address with the bytes before it in memory (n = 9
// read, 0 unreadable) and the kind of walk: what siteVerdict decides
// from, besides the Code.
type siteKey struct {
	ra     uint64
	win    [9]byte
	n      uint8
	kernel bool
}

// siteVal is siteVerdict's verdict.
type siteVal struct{ ok, rule bool }

// callKey is what checkCallsite decides from, besides the Code.
type callKey struct {
	site   siteKey
	callee uint64
}

// maxCodeCache bounds each kind of a CodeCache's entries (hostile input
// cannot make it grow past this; later results are computed, not kept).
const maxCodeCache = 1 << 16

// sharedMap is a map safe for concurrent use that keeps at most
// maxCodeCache entries; the zero value is empty and ready.
type sharedMap[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (s *sharedMap[K, V]) load(k K) (v V, ok bool) {
	s.mu.RLock()
	v, ok = s.m[k]
	s.mu.RUnlock()
	return v, ok
}

func (s *sharedMap[K, V]) store(k K, v V) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[K]V)
	}
	if len(s.m) < maxCodeCache {
		s.m[k] = v
	}
	s.mu.Unlock()
}

func (s *sharedMap[K, V]) len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

// moduleNamer is the optional part of a Code that names the file whose
// text holds a PC (*symbols.Set does): a frame without a symbol still
// gets Sym.Module.
type moduleNamer interface {
	ModuleOf(pc uint64) string
}
