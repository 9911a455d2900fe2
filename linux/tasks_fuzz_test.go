package linux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/unwind-dev/unwind/symbols"
	"github.com/unwind-dev/unwind/unwind"
)

// mapLayout is a Layout from a table, for synthetic kernels.
type mapLayout map[string]int64

func (m mapLayout) StructSize(name string) (int64, bool) { v, ok := m[name]; return v, ok }
func (m mapLayout) MemberOffset(s, member string) (int64, bool) {
	v, ok := m[s+"."+member]
	return v, ok
}

// A small task_struct layout (Linux 6.1's members, compact offsets).
var fuzzLayout = mapLayout{
	"task_struct": 0x100, "task_struct.thread_info.cpu": 0x08, "task_struct.__state": 0x0c,
	"task_struct.flags": 0x10, "task_struct.stack": 0x18, "task_struct.tasks": 0x20,
	"task_struct.exit_state": 0x30, "task_struct.pid": 0x34, "task_struct.tgid": 0x38,
	"task_struct.real_parent": 0x40, "task_struct.thread_group": 0x48, "task_struct.comm": 0x58,
	"task_struct.thread.sp": 0x68,
}

const fuzzBase uint64 = 0xffff888000000000

// fuzzKernel is a Kernel whose memory is b at fuzzBase, with init_task at
// fuzzBase.
func fuzzKernel(b []byte) *Kernel {
	return &Kernel{
		mem:    unwind.FromReaderAt(bytes.NewReader(b), fuzzBase),
		layout: fuzzLayout,
		syms:   map[string]uint64{"init_task": fuzzBase},
		set:    &symbols.Set{},
	}
}

// synthTasks builds n task_structs 0x100 apart on the task list of the
// first (init_task), each its own thread group, with a kernel stack after
// them whose saved sp points at an inactive_task_frame.
func synthTasks(n int) []byte {
	b := make([]byte, n*0x100+threadSize)
	le := binary.LittleEndian
	stack := fuzzBase + uint64(n)*0x100
	for i := 0; i < n; i++ {
		t := b[i*0x100:]
		addr := fuzzBase + uint64(i)*0x100
		next := fuzzBase + uint64((i+1)%n)*0x100
		le.PutUint32(t[0x0c:], 1)                     // TASK_INTERRUPTIBLE
		le.PutUint64(t[0x20:], next+0x20)             // tasks.next
		le.PutUint64(t[0x48:], addr+0x48)             // thread_group: alone
		le.PutUint32(t[0x34:], uint32(i))             // pid
		le.PutUint32(t[0x38:], uint32(i))             // tgid
		le.PutUint64(t[0x40:], fuzzBase)              // real_parent
		copy(t[0x58:], "task")                        // comm
		le.PutUint64(t[0x18:], stack)                 // stack
		le.PutUint64(t[0x68:], stack+threadSize-0x80) // thread.sp
	}
	return b
}

func TestSynthTasks(t *testing.T) {
	k := fuzzKernel(synthTasks(3))
	ts, err := k.Tasks()
	if err != nil || len(ts) != 3 || ts[2].PID != 2 || ts[1].State != "S" || ts[1].Comm != "task" || ts[0].PPID != 0 {
		t.Fatalf("%+v %v", ts, err)
	}
	// Threads: task 3 is off the task list, in task 1's thread group.
	b := synthTasks(4)
	le := binary.LittleEndian
	le.PutUint64(b[2*0x100+0x20:], fuzzBase+0x20)         // 2 → init_task: 3 is no leader
	le.PutUint64(b[1*0x100+0x48:], fuzzBase+3*0x100+0x48) // thread_group 1 → 3
	le.PutUint64(b[3*0x100+0x48:], fuzzBase+1*0x100+0x48) // 3 → 1
	le.PutUint32(b[3*0x100+0x38:], 1)                     // tgid 1
	ts, err = fuzzKernel(b).Tasks()
	if err != nil || len(ts) != 4 || ts[2].PID != 3 || ts[2].TGID != 1 || ts[3].PID != 2 {
		t.Errorf("thread group: %+v %v", ts, err)
	}
	// A ring that never returns to init_task: an error, not a hang.
	b = synthTasks(3)
	binary.LittleEndian.PutUint64(b[2*0x100+0x20:], fuzzBase+0x100+0x20)
	ts, err = fuzzKernel(b).Tasks()
	if err == nil || len(ts) != 3 {
		t.Errorf("cycle: %d tasks, %v", len(ts), err)
	}
	// A task whose saved sp is off its stack: ErrNoStack for it alone.
	b = synthTasks(2)
	binary.LittleEndian.PutUint64(b[0x100+0x68:], 8)
	ts, _ = fuzzKernel(b).Tasks()
	if _, err := fuzzKernel(b).UnwindTask(ts[1], unwind.Options{}); !errors.Is(err, ErrNoStack) {
		t.Errorf("sp off the stack: %v", err)
	}
}

// FuzzTasks lists and unwinds the tasks of a synthetic kernel whose
// memory is the fuzzer's: a bounded walk and an error or a flagged trace,
// never a panic or a hang.
func FuzzTasks(f *testing.F) {
	f.Add(synthTasks(1))
	f.Add(synthTasks(3))
	b := synthTasks(4)
	binary.LittleEndian.PutUint64(b[3*0x100+0x48:], fuzzBase+0x48) // a thread group through init_task
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		k := fuzzKernel(b)
		ts, _ := k.Tasks()
		if len(ts) > maxTasks+1 {
			t.Fatalf("%d tasks", len(ts))
		}
		for _, tk := range ts {
			tr, err := k.UnwindTask(tk, unwind.Options{MaxFrames: 64})
			if err != nil && len(tr.Frames) != 0 {
				t.Fatal("frames and an error")
			}
		}
	})
}

// TestTaskState: the letters of Linux 6.1's task_state_array as
// task_state_index picks them, P (parked) and I (idle) included.
func TestTaskState(t *testing.T) {
	for _, c := range []struct {
		state, exit uint32
		want        string
	}{
		{0, 0, "R"}, {0x1, 0, "S"}, {0x2, 0, "D"}, {0x4, 0, "T"}, {0x8, 0, "t"},
		{0, 0x10, "X"}, {0, 0x20, "Z"}, {0x40, 0, "P"}, {0x402, 0, "I"},
		{0x1000, 0, "D"},   // TASK_RTLOCK_WAIT shows as D
		{0x81, 0, "S"},     // TASK_WAKEKILL|TASK_INTERRUPTIBLE (TASK_KILLABLE-like bits beyond TASK_REPORT)
		{0x102, 0, "D"},    // TASK_KILLABLE
		{0x8, 0x20, "Z"},   // exit_state wins over a stale stop bit
		{0x402, 0x20, "I"}, // TASK_IDLE is checked on __state alone
	} {
		if got := TaskState(c.state, c.exit); got != c.want {
			t.Errorf("TaskState(%#x, %#x) = %s, want %s", c.state, c.exit, got, c.want)
		}
	}
}
