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
    go test "$pkg" -run '^$' -fuzz "^${t}\$" -fuzztime "${secs}s" -fuzzminimizetime 1s -parallel 1 >/tmp/fuzz.$$.log 2>&1 || {
      cat /tmp/fuzz.$$.log >&2
      rm -f /tmp/fuzz.$$.log
      echo "fuzz: $pkg $t failed" >&2
      exit 1
    }
    tail -n 3 /tmp/fuzz.$$.log | grep -E '^(fuzz: elapsed|ok|PASS)' | tail -n 1 || true
    n=$((n + 1))
  done
done
rm -f /tmp/fuzz.$$.log
echo "fuzz: $n targets ran ${secs}s each, no failures"
