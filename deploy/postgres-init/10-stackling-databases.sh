#!/usr/bin/env bash
# One role and one database per service. The postgres image runs this once at first start
# (from /docker-entrypoint-initdb.d); deploy/setup.sh runs it against the local server.
# Idempotent: existing roles and databases are left as they are.
set -euo pipefail

PASSWORD="${STACKLING_DB_PASSWORD:-stackling}"
SERVICES=(gateway compute network volume)

for svc in "${SERVICES[@]}"; do
  name="stackling_${svc}"
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v name="$name" -v password="$PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
done
