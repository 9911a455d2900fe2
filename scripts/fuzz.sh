#!/usr/bin/env bash
# fuzz.sh [SECONDS]: run every fuzz target of the module for SECONDS each
# (default 60), one after the other, with Go's native fuzzing. Minimizing
# a new input is capped at 1 s (the default, a minute, would eat the
# budget), and -parallel 1 keeps one worker, so two cores are enough.
#
# A crasher is written to the package's testdata/fuzz/FuzzX/ folder, which
# go test then runs as a regression case; the script stops at the first
# failure and exits non-zero. CI runs it with a few seconds per target
# (.ci/run); run it for longer before resolving a parser change:
#
#     scripts/fuzz.sh 300
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
n=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
  for t in $targets; do
    echo "fuzz: $pkg $t (${secs}s)"
    if ! go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "${secs}s" -fuzzminimizetime 1s -parallel 1 >/tmp/fuzz.$$.log 2>&1; then
      # Go's fuzzing coordinator can end a short run with "context
      # deadline exceeded" while it still processes a new input, with no
      # failing input found: not a failure of the code under test. A real
      # failure writes its input to testdata/fuzz.
      if grep -q 'context deadline exceeded' /tmp/fuzz.$$.log && ! grep -q 'Failing input written' /tmp/fuzz.$$.log; then
        echo "fuzz: $pkg $t: the run's deadline passed while fuzzing (no failing input)"
      else
        cat /tmp/fuzz.$$.log >&2
        rm -f /tmp/fuzz.$$.log
        echo "fuzz: $pkg $t failed" >&2
        exit 1
      fi
    fi
    tail -n 3 /tmp/fuzz.$$.log | grep -E '^(fuzz: elapsed|ok|PASS)' | tail -n 1 || true
    n=$((n + 1))
  done
done
rm -f /tmp/fuzz.$$.log
echo "fuzz: $n targets ran ${secs}s each, no failures"
