#!/usr/bin/env bash
# Provides PostgreSQL (and Redis and S3, for tests) to a command, then runs it.
#
#   scripts/services.sh run  -- CMD...   DATABASE_URL / REDIS_URL when set; otherwise a
#                                        private PostgreSQL cluster kept in .data/postgres
#                                        (started on demand) and no Redis.
#   scripts/services.sh test -- CMD...   DATABASE_URL / REDIS_URL when set; else the
#                                        servers on 127.0.0.1:5432 / :6379 when they answer;
#                                        else private, throw-away ones on free ports,
#                                        removed when CMD ends.
#                                        S3: TEST_S3_URL when set; else a throw-away
#                                        moto server (installed by scripts/tools.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/common.sh
. scripts/common.sh

mode=${1:?usage: services.sh run|test -- command...}
shift
[ "${1:-}" = "--" ] && shift

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local port
  for _ in $(seq 1 100); do
    port=$(( (RANDOM % 30000) + 20000 ))
    port_open "$port" || { echo "$port"; return 0; }
  done
  die "found no free port"
}

cleanup_steps=()
cleanup() {
  local i
  for (( i=${#cleanup_steps[@]}-1; i>=0; i-- )); do eval "${cleanup_steps[$i]}" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PostgreSQL -------------------------------------------------------------

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

ensure_pg_binaries() {
  [ -n "$(pg_bin)" ] && return 0
  say "installing PostgreSQL server binaries (apt)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >/dev/null
  [ -n "$(pg_bin)" ] || die "PostgreSQL binaries not found after installing"
}

# initdb and postgres refuse to run as root: run them as the `postgres` user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql --shell /bin/false postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# A data directory the cluster's user can reach: under .data/ if it can, else
# under /tmp (a clone in a private home directory).
pg_data_dir() {
  local wanted=$1
  mkdir -p "$(dirname "$wanted")"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$(dirname "$wanted")" 2>/dev/null; then
    wanted="/tmp/cekpot-$(echo "$root" | md5sum | cut -c1-8)-$(basename "$wanted")"
  fi
  echo "$wanted"
}

# start_private_pg DATA_DIR PORT: initialises the cluster when new, then starts it.
start_private_pg() {
  local data=$1 port=$2 bin
  ensure_pg_binaries
  bin=$(pg_bin)
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres "$data" && chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
  fi
  say "starting private PostgreSQL on 127.0.0.1:$port"
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c fsync=off" start >/dev/null ||
    die "PostgreSQL did not start; see $data/server.log"
}

stop_private_pg() { as_pg "$(pg_bin)/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true; }

# ---- Redis ------------------------------------------------------------------

start_private_redis() {
  local port=$1 dir=$2
  if ! command -v redis-server >/dev/null; then
    say "installing redis-server (apt)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p "$dir"
  say "starting private Redis on 127.0.0.1:$port"
  redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do port_open "$port" && return 0; sleep 0.1; done
  die "Redis did not start; see $dir/redis.log"
}

# ---- S3 (moto) ---------------------------------------------------------------

# start_moto PORT DIR: moto's S3 server, which enforces Object Lock, for the
# tests; removed when the command ends.
start_moto() {
  local port=$1 dir=$2
  mkdir -p "$dir"
  say "starting moto (S3 with Object Lock) on 127.0.0.1:$port"
  "$(moto_venv)/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  local pid=$!
  cleanup_steps+=("say 'stopping moto'; kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf '$dir'")
  for _ in $(seq 1 100); do
    port_open "$port" && { export TEST_S3_URL="http://127.0.0.1:$port"; return 0; }
    kill -0 "$pid" 2>/dev/null || { cat "$dir/moto.log" >&2; die "moto exited during start-up"; }
    sleep 0.1
  done
  die "moto did not start; see $dir/moto.log"
}

# ---- Modes ------------------------------------------------------------------

case "$mode" in
  run)
    if [ -z "${DATABASE_URL:-}" ]; then
      data=$(pg_data_dir "$root/.data/postgres")
      port=$(free_port)
      start_private_pg "$data" "$port"
      cleanup_steps+=("say 'stopping private PostgreSQL'; stop_private_pg '$data'")
      as_pg "$(pg_bin)/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc \
        "select 1 from pg_database where datname = 'cekpot'" | grep -q 1 ||
        as_pg "$(pg_bin)/createdb" -h 127.0.0.1 -p "$port" -U postgres cekpot
      export DATABASE_URL="postgres://postgres@127.0.0.1:$port/cekpot"
      say "PostgreSQL: private cluster (data kept in $data)"
    else
      say "PostgreSQL: DATABASE_URL from the environment"
    fi
    [ -n "${REDIS_URL:-}" ] && say "Redis: REDIS_URL from the environment" ||
      say "Redis: not configured (single instance, in-process fallbacks)"
    # A local run is a development setup: /dev/sign-in signs initData with a
    # local bot token, so the Mini App and the player API work in a plain
    # browser. CEKPOT_DEPLOYMENT__ENVIRONMENT=production turns that off.
    export CEKPOT_DEPLOYMENT__ENVIRONMENT=${CEKPOT_DEPLOYMENT__ENVIRONMENT:-development}
    if [ "$CEKPOT_DEPLOYMENT__ENVIRONMENT" = development ]; then
      export CEKPOT_DEV__SIGN_IN_PAGE=${CEKPOT_DEV__SIGN_IN_PAGE:-true}
      export CEKPOT_PLAYERS__DEMO_DEPOSITS=${CEKPOT_PLAYERS__DEMO_DEPOSITS:-true}
      export CEKPOT_TELEGRAM__BOT_TOKEN=${CEKPOT_TELEGRAM__BOT_TOKEN:-0000000000:local-development-only}
      say "development: http://127.0.0.1:3000/dev/sign-in signs initData for test users"
    fi
    ;;
  test)
    if [ -n "${DATABASE_URL:-}" ]; then
      say "PostgreSQL: DATABASE_URL from the environment"
    elif port_open 5432; then
      export DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
      say "PostgreSQL: the server on 127.0.0.1:5432"
    else
      data=$(pg_data_dir "$root/.data/test-postgres-$$")
      port=$(free_port)
      start_private_pg "$data" "$port"
      cleanup_steps+=("say 'removing private PostgreSQL'; stop_private_pg '$data'; rm -rf '$data'")
      export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    fi
    if [ -n "${TEST_S3_URL:-}" ]; then
      say "S3: TEST_S3_URL from the environment"
    elif [ -f "$(moto_venv)/installed" ]; then
      start_moto "$(free_port)" "$root/.data/test-s3-$$"
    else
      say "S3: moto is not installed (scripts/tools.sh test installs it); the audit shipping tests will fail"
    fi
    if [ -n "${REDIS_URL:-}" ]; then
      say "Redis: REDIS_URL from the environment"
    elif port_open 6379; then
      export REDIS_URL="redis://127.0.0.1:6379"
      say "Redis: the server on 127.0.0.1:6379"
    else
      dir="$root/.data/test-redis-$$"
      port=$(free_port)
      start_private_redis "$port" "$dir"
      cleanup_steps+=("say 'removing private Redis'; kill \$(cat '$dir/redis.pid') 2>/dev/null; rm -rf '$dir'")
      export REDIS_URL="redis://127.0.0.1:$port"
    fi
    ;;
  *) die "unknown mode $mode (run|test)" ;;
esac

"$@"
