#!/usr/bin/env bash
# `make test-compose`: tests/compose against docker-compose.yml run for real on this
# machine (after `make setup images`): the host daemons the agents use, then pytest.
# Its wall time is printed at the end. PYTEST_ARGS (e.g. "-k alone") narrow it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$SECONDS
bash deploy/docker-engine.sh
bash deploy/start-host-daemons.sh
status=0
.venv/bin/pytest -p no:cacheprovider --timeout="${TEST_TIMEOUT:-1800}" -s -q \
  --rootdir=tests/compose tests/compose "$@" || status=$?
echo "[test-compose] wall time $((SECONDS - START))s, exit $status"
exit "$status"
