package linux

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/unwind-dev/unwind/dump"
	"github.com/unwind-dev/unwind/ptregs"
	"github.com/unwind-dev/unwind/unwind"
)

// Task is one task (a thread, in user-space terms) of the dumped kernel.
type Task struct {
	PID, TGID int // task_struct.pid and .tgid
	PPID      int // the tgid of its real_parent, as ps and /proc show it
	Comm      string
	// State is the letter ps and the kernel's sysrq-t print show
	// (task_state_to_char in Linux 6.1): R running or runnable, S
	// sleeping, D uninterruptible, T stopped, t traced, X dead, Z zombie,
	// P parked, I idle.
	State string
	// CPU is the CPU the task runs on, or last ran on when it is not
	// running (thread_info.cpu on Linux 6.1, task_struct.cpu before 5.16).
	CPU int
	// Running says the task is some CPU's current task: its stack is
	// that CPU's trace (UnwindTask gives the CPU's).
	Running bool
	// OnCPU is the index in CPUs of the CPU it is current on, -1 when it
	// is not running.
	OnCPU   int
	KThread bool   // a kernel thread (PF_KTHREAD)
	Idle    bool   // a CPU's idle task (swapper/N)
	Addr    uint64 // its task_struct
	Stack   uint64 // the base of its kernel stack (task_struct.stack), 0 when it has none
	// SP is the kernel stack pointer the last context switch saved
	// (thread.sp): the inactive_task_frame __switch_to_asm pushed.
	SP uint64
}

// Kernel constants the task model uses (x86-64, Linux 6.1).
const (
	pfKthread      = 0x00200000 // PF_KTHREAD
	taskReport     = 0x7f       // TASK_REPORT: the state bits ps shows
	taskIdle       = 0x402      // TASK_UNINTERRUPTIBLE | TASK_NOLOAD
	taskRTLockWait = 0x1000     // TASK_RTLOCK_WAIT
	exitZombie     = 0x20       // EXIT_ZOMBIE
	exitDead       = 0x10       // EXIT_DEAD
	inactiveFrame  = 7 * 8      // struct inactive_task_frame on x86-64: r15 r14 r13 r12 bx bp ret_addr
	maxTasks       = 1 << 20    // bound on the list nodes one task listing visits
)

// stateChars is Linux 6.1's task_state_array as task_state_to_char reads
// it, indexed by fls(state).
const stateChars = "RSDTtXZPI"

// TaskState returns the ps letter of a task whose __state and exit_state
// are state and exitState, as Linux 6.1's __task_state_index computes it.
func TaskState(state, exitState uint32) string {
	s := (state | exitState) & taskReport
	if state&taskIdle == taskIdle {
		s = taskReport + 1
	}
	if state == taskRTLockWait {
		s = 2 // TASK_UNINTERRUPTIBLE
	}
	i := 0
	for s != 0 {
		i++
		s >>= 1
	}
	if i >= len(stateChars) {
		return "?"
	}
	return stateChars[i : i+1]
}

// taskOffsets are the task_struct members the task model reads, from the
// Layout.
type taskOffsets struct {
	tasks, pid, tgid, comm, state, exitState, flags, stack, sp int64
	cpu, realParent, threadGroup, threadNode, signal           int64
	threadHead                                                 int64 // signal_struct.thread_head
}

// ErrNoTasks is wrapped by Tasks when the dump cannot list tasks: no
// structure layouts (vmlinux with DWARF) or no init_task.
var ErrNoTasks = errors.New("cannot list tasks")

func (k *Kernel) taskOffsets() (taskOffsets, error) {
	if k.layout == nil {
		return taskOffsets{}, fmt.Errorf("%w: no structure layouts (give vmlinux with its DWARF)", ErrNoTasks)
	}
	return taskOffsetsOf(k.layout)
}

// taskOffsetsOf reads the task model's offsets from l.
func taskOffsetsOf(l Layout) (taskOffsets, error) {
	var o taskOffsets
	get := func(s, m string, must bool, dst *int64) error {
		v, ok := l.MemberOffset(s, m)
		if !ok {
			*dst = -1
			if must {
				return fmt.Errorf("%w: %s has no member %s", ErrNoTasks, s, m)
			}
			return nil
		}
		*dst = v
		return nil
	}
	for _, m := range []struct {
		name string
		dst  *int64
	}{{"tasks", &o.tasks}, {"pid", &o.pid}, {"tgid", &o.tgid}, {"comm", &o.comm}, {"exit_state", &o.exitState},
		{"flags", &o.flags}, {"stack", &o.stack}, {"thread.sp", &o.sp}, {"real_parent", &o.realParent}} {
		if err := get("task_struct", m.name, true, m.dst); err != nil {
			return o, err
		}
	}
	if get("task_struct", "__state", false, &o.state); o.state < 0 { // Linux ≥ 5.14
		if err := get("task_struct", "state", true, &o.state); err != nil {
			return o, err
		}
	}
	if get("task_struct", "thread_info.cpu", false, &o.cpu); o.cpu < 0 { // 5.16+ with THREAD_INFO_IN_TASK
		get("task_struct", "cpu", false, &o.cpu)
	}
	get("task_struct", "thread_group", false, &o.threadGroup) // until 6.6
	get("task_struct", "thread_node", false, &o.threadNode)
	get("task_struct", "signal", false, &o.signal)
	get("signal_struct", "thread_head", false, &o.threadHead)
	if o.threadGroup < 0 && (o.threadNode < 0 || o.signal < 0 || o.threadHead < 0) {
		return o, fmt.Errorf("%w: task_struct has neither thread_group nor thread_node", ErrNoTasks)
	}
	return o, nil
}

// Tasks lists every task of the kernel: the task list from init_task
// (each process's thread-group leader) with every thread of each group,
// then the idle tasks (swapper/N) of the CPUs, which are on no list. It
// needs vmlinux with its DWARF (for the task_struct layout). A task the
// dump does not hold, or a list broken by a missing page or a corrupt
// pointer, is left out with an error saying where; every task that could
// be read is returned with it.
func (k *Kernel) Tasks() ([]Task, error) {
	k.tasksOnce.Do(func() { k.tasks, k.tasksErr = k.readTasks() })
	return append([]Task(nil), k.tasks...), k.tasksErr
}

func (k *Kernel) readTasks() ([]Task, error) {
	o, err := k.taskOffsets()
	if err != nil {
		return nil, err
	}
	init, ok := k.kernelSym("init_task")
	if !ok {
		return nil, fmt.Errorf("%w: no symbol init_task", ErrNoTasks)
	}
	current := map[uint64]int{}
	for i := range k.threads {
		if c := k.cpuInfo(i); c.current != 0 {
			current[c.current] = i
		}
	}
	var out []Task
	var errs []error
	seen := map[uint64]bool{}
	add := func(addr uint64) {
		if seen[addr] {
			return
		}
		seen[addr] = true
		t, err := k.readTask(addr, &o, current)
		if err != nil {
			errs = append(errs, err) // that task is missing; the others stand
			return
		}
		out = append(out, t)
	}
	// The process list: init_task.tasks links every thread-group leader.
	head := init + uint64(o.tasks)
	budget := maxTasks // list nodes visited, over every list
	leaders, err := k.walkList(head, &budget)
	for i := range leaders {
		leaders[i] -= uint64(o.tasks)
	}
	leaders = append([]uint64{init}, leaders...)
	if err != nil {
		errs = append(errs, fmt.Errorf("task list (init_task.tasks): %w", err))
	}
	for _, l := range leaders {
		add(l)
		threads, err := k.threadsOf(l, &o, &budget)
		for _, t := range threads {
			add(t)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Idle tasks: init_task is CPU 0's; the others are idle_threads[cpu].
	idle := map[uint64]bool{init: true}
	if a, ok := k.kernelSym("idle_threads"); ok {
		for i := range k.threads {
			c := k.cpuInfo(i)
			if c.perCPU == 0 {
				continue
			}
			if t := k.readPtr(a + c.perCPU); t != 0 {
				idle[t] = true
				add(t)
			}
		}
	}
	for i := range out {
		out[i].Idle = idle[out[i].Addr]
	}
	return out, errors.Join(errs...)
}

// walkList follows a struct list_head ring from head and returns the
// addresses of its nodes (head excluded). It stops with an error at a
// null or unreadable pointer, a cycle that does not pass through head,
// or when the budget of nodes runs out.
func (k *Kernel) walkList(head uint64, budget *int) ([]uint64, error) {
	var out []uint64
	seen := map[uint64]bool{}
	p, ok := k.readU64(head)
	for p != head {
		switch {
		case !ok || p == 0:
			return out, fmt.Errorf("broken at %#x after %d entries", p, len(out))
		case seen[p]:
			return out, fmt.Errorf("cycle at %#x after %d entries", p, len(out))
		case *budget <= 0:
			return out, fmt.Errorf("more than %d entries", maxTasks)
		}
		seen[p] = true
		*budget--
		out = append(out, p)
		p, ok = k.readU64(p)
	}
	return out, nil
}

// threadsOf lists the threads of the group whose leader is l, l excluded.
func (k *Kernel) threadsOf(l uint64, o *taskOffsets, budget *int) ([]uint64, error) {
	var off int64
	var head uint64
	if o.threadGroup >= 0 {
		// A ring through every thread of the group, the leader included.
		off, head = o.threadGroup, l+uint64(o.threadGroup)
	} else {
		sig := k.readPtr(l + uint64(o.signal))
		if sig == 0 {
			return nil, nil
		}
		off, head = o.threadNode, sig+uint64(o.threadHead)
	}
	nodes, err := k.walkList(head, budget)
	var out []uint64
	for _, p := range nodes {
		if t := p - uint64(off); t != l {
			out = append(out, t)
		}
	}
	if err != nil {
		err = fmt.Errorf("thread list of task %#x: %w", l, err)
	}
	return out, err
}

// readTask reads the task_struct at addr.
func (k *Kernel) readTask(addr uint64, o *taskOffsets, current map[uint64]int) (Task, error) {
	t := Task{Addr: addr, OnCPU: -1}
	var comm [16]byte
	if n, err := k.mem.ReadAt(comm[:], addr+uint64(o.comm)); n != len(comm) {
		return t, fmt.Errorf("task_struct at %#x: %w", addr, err)
	}
	t.Comm = trimNUL(comm[:])
	t.PID = int(int32(k.readU32(addr + uint64(o.pid))))
	t.TGID = int(int32(k.readU32(addr + uint64(o.tgid))))
	if p := k.readPtr(addr + uint64(o.realParent)); p != 0 && p != addr {
		t.PPID = int(int32(k.readU32(p + uint64(o.tgid))))
	}
	t.State = TaskState(k.readU32(addr+uint64(o.state)), k.readU32(addr+uint64(o.exitState)))
	t.KThread = k.readU32(addr+uint64(o.flags))&pfKthread != 0
	t.Stack = k.readPtr(addr + uint64(o.stack))
	t.SP = k.readPtr(addr + uint64(o.sp))
	t.CPU = -1
	if o.cpu >= 0 {
		t.CPU = int(k.readU32(addr + uint64(o.cpu)))
	}
	if i, ok := current[addr]; ok {
		t.Running, t.OnCPU, t.CPU = true, i, k.threads[i].CPU
	}
	return t, nil
}

func (k *Kernel) readPtr(a uint64) uint64 {
	v, _ := k.readU64(a)
	return v
}

func (k *Kernel) readU32(a uint64) uint32 {
	var b [4]byte
	if n, _ := k.mem.ReadAt(b[:], a); n != 4 {
		return 0
	}
	return binary.LittleEndian.Uint32(b[:])
}

// TaskStack returns the stack-bounds oracle of a task that is not
// running: its kernel stack (task_struct.stack, THREAD_SIZE bytes).
func (k *Kernel) TaskStack(t Task) unwind.Stacks {
	if t.Stack == 0 {
		return nil
	}
	return unwind.Stacks{{Kind: unwind.StackTask, Lo: t.Stack, Hi: t.Stack + threadSize, CPU: t.CPU, Name: fmt.Sprintf("task %#x", t.Addr)}}
}

// ErrNoStack is wrapped by UnwindTask's error for a task whose stack
// cannot be unwound: it has none (a zombie, a task being torn down), its
// saved stack pointer is not on it, or the dump does not hold it.
var ErrNoStack = errors.New("task stack unavailable")

// UnwindTask unwinds one task. A running task's trace is its CPU's
// (UnwindCPU). Any other task is unwound from the state its last context
// switch saved: thread.sp points at the inactive_task_frame that
// __switch_to_asm pushed (r15, r14, r13, r12, rbx, rbp and the return
// address into __schedule, or ret_from_fork for a task that never ran),
// and the walk goes on from there like the kernel's own unwinder
// (unwind_start for a blocked task), on the task's stack. A kernel
// thread's walk ends reliably at ret_from_fork, on the all-zero pt_regs
// at the top of its stack. opts may set Methods and MaxFrames.
//
// The error wraps ErrNoStack when the task has no stack to unwind; the
// Trace is then empty.
func (k *Kernel) UnwindTask(t Task, opts unwind.Options) (dump.Trace, error) {
	if t.Running && t.OnCPU >= 0 {
		return k.UnwindCPU(t.OnCPU, opts)
	}
	if t.Stack == 0 {
		if t.State == "Z" || t.State == "X" {
			return dump.Trace{}, fmt.Errorf("%w: pid %d is a zombie, its stack is freed", ErrNoStack, t.PID)
		}
		return dump.Trace{}, fmt.Errorf("%w: pid %d has no kernel stack (task_struct.stack is 0: exiting?)", ErrNoStack, t.PID)
	}
	if t.SP < t.Stack || t.SP+inactiveFrame > t.Stack+threadSize {
		return dump.Trace{}, fmt.Errorf("%w: pid %d: saved stack pointer %#x is not on its stack [%#x,%#x) (in exec or exit?)",
			ErrNoStack, t.PID, t.SP, t.Stack, t.Stack+threadSize)
	}
	var b [inactiveFrame]byte
	if n, err := k.mem.ReadAt(b[:], t.SP); n != len(b) {
		return dump.Trace{}, fmt.Errorf("%w: pid %d: its stack at %#x is not in the dump: %v", ErrNoStack, t.PID, t.SP, err)
	}
	le := binary.LittleEndian
	var regs ptregs.Regs
	regs.Set(ptregs.R15, le.Uint64(b[0:]))
	regs.Set(ptregs.R14, le.Uint64(b[8:]))
	regs.Set(ptregs.R13, le.Uint64(b[16:]))
	regs.Set(ptregs.R12, le.Uint64(b[24:]))
	regs.Set(ptregs.RBX, le.Uint64(b[32:]))
	regs.Set(ptregs.RBP, le.Uint64(b[40:]))
	regs.Set(ptregs.RIP, le.Uint64(b[48:]))
	regs.Set(ptregs.RSP, t.SP+inactiveFrame)
	opts.Code = Code{k.set, k.mem}
	opts.Stacks = k.TaskStack(t)
	opts.Kernel = true
	if opts.CodeCache == nil {
		opts.CodeCache = &k.codeCache
	}
	opts.ForkReturnSlot = t.SP + 48
	return dump.Walk(k.mem, regs, &opts), nil
}
