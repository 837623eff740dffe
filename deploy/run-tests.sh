#!/usr/bin/env bash
# Run every test suite of the repo, each in its own pytest process (packages have their
# own conftest.py and may reuse test module names), then print one total line.
# A suite without tests is fine (pytest exit 5); the run fails if no suite has any.
#
#   deploy/run-tests.sh                 all suites that exist
#   deploy/run-tests.sh tests/static    only these paths
#   PYTEST_ARGS="-x -k rpc" deploy/run-tests.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTEST="$ROOT/.venv/bin/pytest"
PY="$ROOT/.venv/bin/python"
RESULTS="$ROOT/build/test-results"
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"    # per test (pytest-timeout)
SUITE_TIMEOUT="${SUITE_TIMEOUT:-1800}" # per suite, wall clock
read -r -a EXTRA <<<"${PYTEST_ARGS:-}"

if (($# > 0)); then
  SUITES=("$@")
else
  SUITES=()
  for dir in common-rpc/tests compute-svc/tests network-svc/tests volume-svc/tests \
    api-gateway/tests tests/static tests/e2e tests/console; do
    [[ -d "$dir" ]] && SUITES+=("$dir")
  done
fi

rm -rf "$RESULTS"
mkdir -p "$RESULTS"
failed_suites=()
empty_suites=()
for suite in "${SUITES[@]}"; do
  name="${suite//\//_}"
  echo "=== $suite"
  rc=0
  timeout --kill-after=30 "$SUITE_TIMEOUT" "$PYTEST" -q -p no:cacheprovider \
    --timeout="$TEST_TIMEOUT" --junitxml="$RESULTS/$name.xml" "${EXTRA[@]}" "$suite" || rc=$?
  case "$rc" in
    0) ;;
    5) empty_suites+=("$suite") ;;
    124 | 137) failed_suites+=("$suite (over ${SUITE_TIMEOUT}s)") ;;
    *) failed_suites+=("$suite (pytest exit $rc)") ;;
  esac
done

# Totals from the JUnit files: passed, failed (failures + errors), skipped.
read -r passed failed skipped < <(
  "$PY" - "$RESULTS" <<'EOF'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

total = failed = skipped = 0
for path in Path(sys.argv[1]).glob("*.xml"):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        total += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
print(total - failed - skipped, failed, skipped)
EOF
)

echo
((${#empty_suites[@]} == 0)) || echo "suites without tests: ${empty_suites[*]}"
status=0
if ((${#failed_suites[@]} > 0)); then
  echo "FAILED suites: ${failed_suites[*]}"
  ((failed > 0)) || failed=${#failed_suites[@]}
  status=1
fi
if ((passed + failed == 0)); then
  echo "no test ran in any suite"
  status=1
fi
echo "total: $passed passed, $failed failed, $skipped skipped"
exit "$status"
