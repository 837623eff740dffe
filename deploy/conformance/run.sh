#!/usr/bin/env bash
# `make conformance`: upstream Tempest's "OpenStack Powered Compute" list (interop guideline
# 2020.06) against a running cloud, and one line: conformance: passed=N failed=N skipped=N.
#
#   1. .venv-tempest: Tempest and openstacksdk pinned by deploy/conformance/constraints.txt
#   2. every ID of the list must be a test of that Tempest (`tempest run --list-tests`)
#   3. prepare.py: roles, flavors, images of stackling-tiny, an external network; tempest.conf
#   4. tempest run --include-list <the list>, then results.py: results.json and the summary
#
# Settings (environment):
#   CONFORMANCE_CLOUD        clouds.yaml entry with admin rights (default stackling-admin)
#   OS_CLIENT_CONFIG_FILE    the clouds.yaml (default $STACKLING_DATA_DIR/clouds.yaml)
#   CONFORMANCE_CONCURRENCY  Tempest workers (default 2: guests run under TCG on 2 cores)
#   CONFORMANCE_TIMEOUT      seconds a server/volume/image gets to settle (default 600)
#   CONFORMANCE_TEST_TIMEOUT seconds one test may take (default 1800)
#   CONFORMANCE_FILTER       a regex: run only the listed IDs it matches (a quick re-run)
#   CONFORMANCE_PUBLIC_CIDR  the external network's subnet (default 10.199.0.0/24)
#   CONFORMANCE_EXTRA_CONF   an ini file of tempest.conf options laid over the generated ones
#   STACKLING_GUEST_DIR      where `make image` put disk.qcow2 (default /var/lib/stackling/guest)
#   deploy/conformance/run.sh --cleanup   deletes the flavors, images and network it made
#
# Output in build/conformance/: results.json, results.subunit, tempest.log, run.log,
# tempest.conf (password inside: mode 0600), cloud.json, all-tests.txt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/conformance"
VENV="$ROOT/.venv-tempest"
OUT="$ROOT/build/conformance"
WORKSPACE="$OUT/workspace"
PYTHON="${PYTHON:-python3.11}"
LIST="$HERE/interop-2020.06-powered-compute.txt"
DATA_DIR="${STACKLING_DATA_DIR:-$ROOT/data}"
export OS_CLIENT_CONFIG_FILE="${OS_CLIENT_CONFIG_FILE:-$DATA_DIR/clouds.yaml}"
CLOUD="${CONFORMANCE_CLOUD:-stackling-admin}"
CONCURRENCY="${CONFORMANCE_CONCURRENCY:-2}"
TIMEOUT="${CONFORMANCE_TIMEOUT:-600}"
GUEST_DIR="${STACKLING_GUEST_DIR:-/var/lib/stackling/guest}"

START=$SECONDS
say() { printf '[conformance %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() {
  printf '[conformance] ERROR: %s\n' "$*" >&2
  exit 2
}

install_tempest() {
  local stamp="$VENV/.conformance-stamp" digest
  digest="$({ "$PYTHON" --version; cat "$HERE/constraints.txt"; } 2>&1 | sha256sum | cut -d' ' -f1)"
  [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]] && return
  say "venv: installing Tempest into $VENV"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  local log="$OUT/pip.log"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -c "$HERE/constraints.txt" \
    tempest openstacksdk >"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "pip install failed (full log: $log)"
  }
  echo "$digest" >"$stamp"
}

# Every ID of the list must name a test of this Tempest; a renamed test would otherwise
# just not run. Those missing are reported (and counted as failed by results.py).
check_ids() {
  [[ -f "$WORKSPACE/.stestr.conf" ]] || "$VENV/bin/tempest" init "$WORKSPACE" >/dev/null
  (cd "$WORKSPACE" && "$VENV/bin/tempest" run --list-tests 2>/dev/null) |
    grep '^tempest\.' >"$OUT/all-tests.txt" || die "tempest run --list-tests listed nothing"
  local missing
  missing="$(sed 's/\[.*\]$//' "$OUT/all-tests.txt" | sort -u | comm -13 - <(grep -v '^#' "$LIST" | sort -u))"
  if [[ -n "$missing" ]]; then
    say "IDs of the list that this Tempest does not have:"
    sed 's/^/  /' <<<"$missing"
  else
    say "list: all $(grep -c '^tempest\.' "$LIST") IDs found in $("$VENV/bin/tempest" --version 2>&1 | tail -n 1)"
  fi
}

mkdir -p "$OUT"
install_tempest
if [[ "${1:-}" == "--cleanup" ]]; then
  exec "$VENV/bin/python" "$HERE/prepare.py" --cloud "$CLOUD" --cleanup
fi
[[ -f "$OS_CLIENT_CONFIG_FILE" ]] || die "no $OS_CLIENT_CONFIG_FILE: start the cloud (make run) or set OS_CLIENT_CONFIG_FILE"
check_ids

say "preparing cloud $CLOUD ($OS_CLIENT_CONFIG_FILE)"
umask 077 # tempest.conf holds the admin password
"$VENV/bin/python" "$HERE/prepare.py" --cloud "$CLOUD" --disk "$GUEST_DIR/disk.qcow2" \
  --public-cidr "${CONFORMANCE_PUBLIC_CIDR:-10.199.0.0/24}" --timeout "$TIMEOUT" \
  --conf "$WORKSPACE/etc/tempest.conf" --facts "$OUT/cloud.json" \
  --log-dir "$OUT" --lock-path "$WORKSPACE/tempest_lock" \
  ${CONFORMANCE_EXTRA_CONF:+--extra-conf "$CONFORMANCE_EXTRA_CONF"}
umask 022
ln -sf workspace/etc/tempest.conf "$OUT/tempest.conf"

RUN_LIST="$OUT/run-list.txt"
grep -E "${CONFORMANCE_FILTER:-.}" "$LIST" | grep -v '^#' >"$RUN_LIST" ||
  die "CONFORMANCE_FILTER=${CONFORMANCE_FILTER:-} matches no listed ID"
# Tempest searches each line of an include list as a regex in the test IDs: anchored, or
# test_multiple_create would also run test_multiple_create_with_reservation_return.
sed -e 's/\./\\./g' -e 's/^/^/' -e 's/$/(\\[|$)/' "$RUN_LIST" >"$OUT/include-list.txt"
say "running $(wc -l <"$RUN_LIST") tests, concurrency $CONCURRENCY (log: $OUT/run.log)"
rm -f "$OUT/tempest.log"
rc=0
(cd "$WORKSPACE" && OS_TEST_TIMEOUT="${CONFORMANCE_TEST_TIMEOUT:-1800}" \
  "$VENV/bin/tempest" run --include-list "$OUT/include-list.txt" --concurrency "$CONCURRENCY") \
  >"$OUT/run.log" 2>&1 || rc=$?
tail -n 12 "$OUT/run.log" | sed 's/^/  /'
(cd "$WORKSPACE" && "$VENV/bin/stestr" last --subunit >"$OUT/results.subunit") ||
  die "no subunit stream from this run (tempest exited $rc; see $OUT/run.log)"
say "tempest exited $rc after $((SECONDS - START)) s"
"$VENV/bin/python" "$HERE/results.py" --ids "$RUN_LIST" --subunit "$OUT/results.subunit" \
  --accepted "$HERE/accepted-skips.txt" --known "$OUT/all-tests.txt" --out "$OUT/results.json"
