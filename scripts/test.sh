#!/usr/bin/env bash
# The whole test suite, step by step. Run through `make test`, which provides
# the tools and DATABASE_URL / REDIS_URL (scripts/tools.sh, scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DATABASE_URL:?run this through make test}"
: "${REDIS_URL:?run this through make test}"
target_dir=${CARGO_TARGET_DIR:-target}
steps=7
step=0
started=$SECONDS

run_step() {
  local title=$1
  shift
  step=$((step + 1))
  local t0=$SECONDS
  printf '\n\033[1;34m==> [%d/%d] %s\033[0m\n' "$step" "$steps" "$title"
  "$@"
  printf '\033[1;32m    done in %ds\033[0m\n' $((SECONDS - t0))
}

ready() { # ready PORT: /readyz answers 200
  (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3 &&
    head -n 1 <&3 | grep -q ' 200 ') 2>/dev/null
}

# Serves the release build against a fresh database and drives it with Playwright.
e2e() (
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $(( (RANDOM % 20000) + 30000 )))
  db="cekpot_e2e_$$"
  log="$target_dir/e2e-server.log"
  scripts/psql.sh "$DATABASE_URL" "create database $db"
  # A development server: the slot test signs in through /dev/sign-in.
  CEKPOT_DEPLOYMENT__ENVIRONMENT=development CEKPOT_DEV__SIGN_IN_PAGE=true \
    CEKPOT_TELEGRAM__BOT_TOKEN=0000000000:e2e-development-only \
    CEKPOT_HTTP__ADDR="127.0.0.1:$port" CEKPOT_LOG__FORMAT=json \
    DATABASE_URL="${DATABASE_URL%/*}/$db" "$target_dir/release/server" >"$log" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; scripts/psql.sh "$DATABASE_URL" "drop database if exists $db"' EXIT
  for _ in $(seq 1 150); do
    ready "$port" && break
    kill -0 $pid 2>/dev/null || { cat "$log"; echo "the server exited during start-up" >&2; exit 1; }
    sleep 0.2
  done
  (cd end2end && BASE_URL="http://127.0.0.1:$port" npx --no-install playwright test)
  echo "    screenshots kept in end2end/screenshots/, server log in $log"
)

run_step "format (cargo fmt --check)" cargo fmt --all -- --check
run_step "lint the server build (clippy, ssr)" \
  cargo clippy --locked -p domain -p app -p server -p cekpot-client --all-targets -- -D warnings
run_step "lint the browser build (clippy, hydrate, wasm32)" \
  cargo clippy --locked --target wasm32-unknown-unknown -p app -p frontend --features app/hydrate,frontend/hydrate -- -D warnings
run_step "unit and integration tests (PostgreSQL + Redis)" \
  cargo test --locked -p domain -p app -p server -p cekpot-client
run_step "client-only build (trunk build)" trunk build
run_step "release build of the site (cargo leptos build --release)" cargo leptos build --release
run_step "browser tests (Playwright, Chromium 390x844)" e2e

printf '\n\033[1;32mall %d steps passed in %dm%02ds\033[0m\n' "$steps" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
