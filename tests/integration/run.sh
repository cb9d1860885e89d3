#!/usr/bin/env bash
# run.sh — runs every tests/integration/test_*.sh (or the named ones) against $BUILD/bin and
# ends with "N passed, M failed"; exits non-zero if any failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$ROOT/$BUILD
export BUILD
TEST_BOUND_S=600 # a hung test is killed (its EXIT trap still tears its cluster down)

for b in keeld keelctl; do
  [[ -x $BUILD/bin/$b ]] || { echo "run.sh: $BUILD/bin/$b missing (make BUILD=$BUILD all)" >&2; exit 1; }
done

tests=()
if (($#)); then
  for t in "$@"; do tests+=("$ROOT/tests/integration/${t%.sh}.sh"); done
else
  tests=("$ROOT"/tests/integration/test_*.sh)
fi

passed=0 failed=0 failures=()
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  [[ -f $t ]] || { echo "FAIL $name: no such test"; failed=$((failed + 1)); failures+=("$name"); continue; }
  start=$SECONDS
  if timeout -k 30 "$TEST_BOUND_S" bash "$t"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
  fi
  echo "   ($name: $((SECONDS - start)) s)"
done
((failed == 0)) || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
((failed == 0))
