#!/bin/sh
# The first start initialises the cluster (the postgres role's password from
# POSTGRES_PASSWORD, password logins from other hosts) and runs the scripts of
# /docker-entrypoint-initdb.d against it, as Docker's postgres image does; every start
# then runs the server in the foreground, listening on every address.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
export POSTGRES_USER="${POSTGRES_USER:-postgres}" POSTGRES_DB="${POSTGRES_DB:-postgres}"

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || { echo "POSTGRES_PASSWORD is not set" >&2; exit 1; }
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "jit = off" >>"$PGDATA/postgresql.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh) echo "initdb.d: $script"; if [ -x "$script" ]; then "$script"; else bash "$script"; fi ;;
      *.sql) echo "initdb.d: $script"; psql -v ON_ERROR_STOP=1 --no-psqlrc -q -f "$script" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "database initialised in $PGDATA"
fi

if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -D "$PGDATA" -c listen_addresses='*' -c jit=off "$@"
fi
exec "$@"
