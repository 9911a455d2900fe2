package emu

import (
	"errors"
	"testing"
)

// FuzzExecute runs random bytes as code at CPL 0 for a bounded number of
// steps: the interpreter must not panic, and every stop must be an *Error
// (naming the address and bytes) or ErrStopped.
func FuzzExecute(f *testing.F) {
	f.Add([]byte{0x48, 0x01, 0xd8, 0xc3})             // add %rbx,%rax; ret
	f.Add([]byte{0x0f, 0xa2})                         // cpuid (unimplemented)
	f.Add([]byte{0xcc})                               // int3 without an IDT
	f.Add([]byte{0x48, 0xf7, 0xf3})                   // div %rbx (#DE)
	f.Add([]byte{0xf3, 0x48, 0xab, 0xeb, 0xfe})       // rep stosq; jmp .
	f.Add([]byte{0x48, 0xcf})                         // iretq
	f.Add([]byte{0x0f, 0x01, 0x18, 0x0f, 0x32, 0xf4}) // lidt (%rax); rdmsr; hlt
	f.Fuzz(func(t *testing.T, code []byte) {
		if len(code) > 4096 {
			code = code[:4096]
		}
		m := newBare(code)
		c := m.CPUs[0]
		c.GPR[RAX], c.GPR[RBX], c.GPR[RCX] = 0x8000, 3, 16
		c.GPR[RDI], c.GPR[RSI] = 0x8100, 0x8200
		for i := 0; i < 256; i++ {
			err := m.Step()
			if err == nil {
				continue
			}
			var e *Error
			if !errors.Is(err, ErrStopped) && !errors.As(err, &e) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if e != nil && e.Msg == "" {
				t.Fatal("error without a message")
			}
			break
		}
		m.ShadowStack(0)
	})
}

// FuzzParseScenario: the scenario parser never panics.
func FuzzParseScenario(f *testing.F) {
	f.Add([]byte("kernel fp\ncpus 2\nnmi cpu=1 at=sym:spin#3\nsnapshot s cpu=0 at=insn:100\ninvariant console-contains \"ok # x\"\n"))
	f.Add([]byte("poke boot_args 0x10 size=4\nstop until=halt\nlimit 1_000\n"))
	f.Add([]byte("cpus 2\nsweep nmi cpu=0 target=1 from=sym:a#1 to=sym:b+4#2\nsweep irq vector=0xed from=insn:5 count=60\ninvariant site-bytes s 0f1f440000 call:t name=w expect=fail\ninvariant call-like t site=s\ninvariant exit-status 0 cpu=1\ninvariant no-frame-clobber int3 debug\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		sc, err := ParseScenario("fuzz", text)
		if (sc == nil) == (err == nil) {
			t.Fatalf("sc=%v err=%v", sc, err)
		}
	})
}
