package dump

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// The emulator's ground-truth note in a snapshot core file: owner
// EmulatorNoteOwner, type EmulatorNoteType, descriptor the JSON of an
// EmulatorInfo. The same JSON is written beside the core as NAME.truth.json.
const (
	EmulatorNoteOwner = "UNWIND"
	EmulatorNoteType  = 1
	// EmulatorInfoVersion is the schema version written in EmulatorInfo.Version.
	EmulatorInfoVersion = 1
)

// Hex is a uint64 that marshals to JSON as a "0x…" string (addresses do not
// fit a float64 JSON number). It also accepts plain numbers when decoding.
type Hex uint64

// MarshalJSON implements json.Marshaler.
func (h Hex) MarshalJSON() ([]byte, error) {
	return []byte(`"0x` + strconv.FormatUint(uint64(h), 16) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (h *Hex) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return fmt.Errorf("dump: bad hex value %s", b)
	}
	*h = Hex(v)
	return nil
}

// EmulatorInfo is the ground truth of one emulator snapshot: what ran, the
// state of every CPU and its shadow stack. Dump readers use it to label a
// core as an emulator trace, to learn stack bounds, and to check unwinds.
type EmulatorInfo struct {
	Version       int           `json:"version"`
	Scenario      string        `json:"scenario"`
	Snapshot      string        `json:"snapshot"`
	Kernel        string        `json:"kernel"` // "fp" or "nofp"
	KernelPath    string        `json:"kernel_path,omitempty"`
	KernelBuildID string        `json:"kernel_build_id,omitempty"` // hex NT_GNU_BUILD_ID
	TriggerCPU    int           `json:"trigger_cpu"`               // the CPU the snapshot point names
	Instructions  uint64        `json:"instructions"`              // retired by all CPUs
	CPUs          []EmulatorCPU `json:"cpus"`
}

// EmulatorCPU is one CPU's state in an EmulatorInfo.
type EmulatorCPU struct {
	CPU          int             `json:"cpu"`
	Instructions uint64          `json:"instructions"`
	Stacks       []EmulatorStack `json:"stacks"`
	IDTR         DescriptorTable `json:"idtr"`
	NMIBlocked   bool            `json:"nmi_blocked"`
	NMILatched   bool            `json:"nmi_latched"`
	Halted       bool            `json:"halted"`
	Done         bool            `json:"done"`
	// Truth is the shadow stack, innermost frame first.
	Truth []TruthFrame `json:"truth"`
}

// EmulatorStack is one stack's bounds: addresses in [Lo, Hi).
type EmulatorStack struct {
	Kind string `json:"kind"` // task|irq|nmi|db|df|mc|user (unwind.StackKind names)
	Lo   Hex    `json:"lo"`
	Hi   Hex    `json:"hi"`
}

// DescriptorTable is an IDTR or GDTR value.
type DescriptorTable struct {
	Base  Hex    `json:"base"`
	Limit uint16 `json:"limit"`
}

// TruthFrame is one ground-truth frame. Kind is "call", "interrupted" or
// "user"; Entry, Vector, RegsAddr and Regs are set for frames an event
// interrupted (Regs: lower-case register names, as in `unwind bt -o json`).
type TruthFrame struct {
	Function string         `json:"function"`
	PC       Hex            `json:"pc"`
	CFA      Hex            `json:"cfa"`
	SP       Hex            `json:"sp"`
	Kind     string         `json:"kind"`
	Stack    string         `json:"stack"`
	Entry    string         `json:"entry,omitempty"`
	Vector   *int           `json:"vector,omitempty"`
	RegsAddr Hex            `json:"regs_addr,omitempty"`
	Regs     map[string]Hex `json:"regs,omitempty"`
}

// ParseEmulatorInfo decodes the descriptor of an UNWIND note (or a
// .truth.json file). It rejects unknown schema versions and CPU counts
// beyond 4096.
func ParseEmulatorInfo(desc []byte) (*EmulatorInfo, error) {
	var info EmulatorInfo
	if err := json.Unmarshal(desc, &info); err != nil {
		return nil, fmt.Errorf("dump: emulator note: %w", err)
	}
	if info.Version != EmulatorInfoVersion {
		return nil, fmt.Errorf("dump: emulator note: unsupported version %d", info.Version)
	}
	if len(info.CPUs) > 4096 {
		return nil, fmt.Errorf("dump: emulator note: %d CPUs", len(info.CPUs))
	}
	return &info, nil
}
