package emu

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var sweepFull = flag.Bool("sweep.full", false, "run every arrival point of every mechanism sweep (default: every 5th)")

// mechanismScenarios are the scenarios of fixtures/kernel's five
// mechanisms (docs/MECHANISMS.md), with the invariants each is expected to
// violate (expect=fail): the buggy variants.
var mechanismScenarios = map[string][]string{
	"idt-swap-noswap":      {"db-frame-survives"},
	"idt-swap-buggy":       {"idt-restored"},
	"idt-swap-fixed":       nil,
	"patch-nmi-wt":         nil,
	"patch-nmi-wt-sweep":   nil,
	"patch-nmi-nowt":       {"patch-completes", "cpu1-survives", "site-whole"},
	"patch-nmi-nowt-sweep": {"patch-completes", "cpu1-survives", "site-whole"},
	"nested-nmi":           {"no-frame-clobber"}, // the IST reset Linux's scheme handles
	"nested-nmi-naive":     {"nmi-never-nested", "stack-intact", "iret-resumes"},
	"int3-call-gap":        nil,
	"int3-call-tramp":      nil,
	"ptregs-partial":       nil,
	"ptregs-marker":        nil,
}

func loadScenarioFile(t *testing.T, name string) (*Scenario, []byte) {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("../fixtures/scenarios", name+".scenario"))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ParseScenario(name, text)
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.ReadFile("../fixtures/kernel/build/kernel-" + sc.Kernel + ".elf")
	if err != nil {
		t.Fatal(err)
	}
	return sc, kernel
}

// TestMechanismSweeps runs each mechanism scenario's sweeps: the buggy
// variants fail their invariant (by name) at one arrival point or more,
// everything else holds at every point. -sweep.full runs every point.
func TestMechanismSweeps(t *testing.T) {
	every := uint64(5)
	if *sweepFull {
		every = 1
	}
	for name, bugs := range mechanismScenarios {
		t.Run(name, func(t *testing.T) {
			sc, kernel := loadScenarioFile(t, name)
			expect := map[string]bool{}
			for _, b := range bugs {
				expect[b] = true
			}
			for _, inv := range sc.Invariants {
				if inv.ExpectFail != expect[inv.Name] {
					t.Errorf("invariant %s: expect=fail is %v, want %v", inv.Name, inv.ExpectFail, expect[inv.Name])
				}
			}
			res, err := RunScenario(sc, kernel, RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Failures {
				t.Errorf("plain run: %s", f)
			}
			srs, err := SweepScenario(sc, kernel, SweepOptions{Every: every})
			if err != nil {
				t.Fatal(err)
			}
			if len(srs) == 0 && name != "patch-nmi-nowt" {
				t.Errorf("no sweep")
			}
			for _, sr := range srs {
				for _, is := range sr.Invariants {
					if is.Kind == "no-snapshot-missed" {
						continue
					}
					switch {
					case is.ExpectFail && is.Failed == 0:
						t.Errorf("sweep line %d: %s held at all %d points; the bug should show", sr.Sweep.Line, is.Name, len(sr.Points))
					case is.ExpectFail:
						t.Logf("sweep line %d (%s): %s fails at %d of %d points, as expected", sr.Sweep.Line, sr.Sweep.Kind, is.Name, is.Failed, len(sr.Points))
					case is.Failed > 0:
						t.Errorf("sweep line %d: %s failed at %d of %d points; first: %s", sr.Sweep.Line, is.Name, is.Failed, len(sr.Points), is.First)
					}
				}
				for _, f := range sr.Failures {
					t.Errorf("%s", f)
				}
			}
		})
	}
}

// The call-like invariant is not vacuous: with the wrong site it fails.
func TestCallLikeDetects(t *testing.T) {
	sc, kernel := loadScenarioFile(t, "int3-call-gap")
	for i := range sc.Invariants {
		if sc.Invariants[i].Kind == "call-like" {
			sc.Invariants[i].Site = "int3_site+1"
		}
	}
	sc.Sweeps = nil
	res, err := RunScenario(sc, kernel, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range res.Failures {
		found = found || f.Invariant == "call-like"
	}
	if !found {
		t.Errorf("call-like with a wrong site did not fail: %v", res.Failures)
	}
}

// Stacks use the kernel's fixed per-CPU sizes, also with one CPU (the
// arrays are [MAX_CPUS=2][size]).
func TestStacksOneCPU(t *testing.T) {
	m := loadFixture(t, "fp", 1)
	want := map[string]uint64{"task_stacks": 16384, "irq_stacks": 16384, "nmi_stacks": 8192, "db_stacks": 8192, "df_stacks": 8192, "mc_stacks": 8192, "user_stacks": 8192}
	got := map[string]bool{}
	for _, s := range m.Stacks(0) {
		sym, _ := m.SymbolByName(s.Name)
		if s.Hi-s.Lo != want[s.Name] || s.Lo != sym.Addr {
			t.Errorf("%s: [%#x, %#x) size %d, want [%#x, +%d)", s.Name, s.Lo, s.Hi, s.Hi-s.Lo, sym.Addr, want[s.Name])
		}
		got[s.Name] = true
	}
	for n := range want {
		if !got[n] {
			t.Errorf("no %s stack", n)
		}
	}
}
