package unwind

// StackKind names the kind of stack a frame lies on. Its String form is the
// "stack" field of the JSON output and the section name of the text output.
type StackKind uint8

// Stack kinds, from the innermost an unwind can start on to the outermost.
const (
	StackUnknown   StackKind = iota
	StackNMI                 // NMI IST stack
	StackDB                  // #DB IST stack
	StackDF                  // #DF IST stack
	StackMC                  // #MC IST stack
	StackVC                  // #VC IST stack (SEV-ES)
	StackEntry               // per-CPU entry trampoline stack
	StackIRQ                 // hardirq stack
	StackSoftIRQ             // softirq stack (32-bit kernels and some configs)
	StackTask                // kernel task stack
	StackAltSignal           // user sigaltstack
	StackUser                // user stack
)

var stackNames = [...]string{
	StackUnknown:   "unknown",
	StackNMI:       "nmi",
	StackDB:        "db",
	StackDF:        "df",
	StackMC:        "mc",
	StackVC:        "vc",
	StackEntry:     "entry",
	StackIRQ:       "irq",
	StackSoftIRQ:   "softirq",
	StackTask:      "task",
	StackAltSignal: "altstack",
	StackUser:      "user",
}

func (k StackKind) String() string {
	if int(k) < len(stackNames) {
		return stackNames[k]
	}
	return "unknown"
}

// ParseStackKind is the inverse of StackKind.String.
func ParseStackKind(s string) (StackKind, bool) {
	for i, n := range stackNames {
		if n == s {
			return StackKind(i), true
		}
	}
	return StackUnknown, false
}

// Stack is one stack's bounds: addresses in [Lo, Hi) belong to it.
type Stack struct {
	Kind StackKind
	Lo   uint64
	Hi   uint64
	CPU  int    // owning CPU, -1 when not per-CPU
	Name string // optional detail ("task pid 1", "IST1")
}

// Contains reports whether addr lies on the stack.
func (s Stack) Contains(addr uint64) bool { return addr >= s.Lo && addr < s.Hi }

// holds is Contains without copying the Stack: the copy of a field the
// inlined Contains makes is then read back before its stores retire.
func (s *Stack) holds(addr uint64) bool { return addr >= s.Lo && addr < s.Hi }

// StackBounds is the stack-bounds oracle: it says which known stack, if any,
// holds addr. A dump reader builds one per CPU or thread from symbols and
// per-CPU data; Stacks is the simplest implementation.
type StackBounds interface {
	StackOf(addr uint64) (Stack, bool)
}

// Stacks is a StackBounds backed by a short list; the first stack that
// contains an address wins.
type Stacks []Stack

// StackOf implements StackBounds.
func (ss Stacks) StackOf(addr uint64) (Stack, bool) {
	for i := range ss {
		if ss[i].holds(addr) {
			return ss[i], true
		}
	}
	return Stack{}, false
}
