#!/usr/bin/env bash
# scripts/psql.sh URL SQL — runs one statement with whichever psql this machine
# has (PATH, or the PostgreSQL server's own bin directory).
set -euo pipefail
psql=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$psql" ]; then
  echo "installing the PostgreSQL client (apt)" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq postgresql-client >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq postgresql-client >/dev/null; fi
  psql=$(command -v psql)
fi
"$psql" "$1" -v ON_ERROR_STOP=1 -qtAc "$2"
