#!/usr/bin/env bash
# Installs the build and test tools Cekpot needs, each only when missing or at
# the wrong version. Idempotent; safe to run on every `make`.
#
#   scripts/tools.sh run    what `make run` needs (wasm target, cargo-leptos, wasm-bindgen, wasm-opt)
#   scripts/tools.sh test   all of the above, plus trunk, Chromium and Playwright
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0
mode=${1:-test}
# shellcheck source=scripts/common.sh
. scripts/common.sh

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it yourself, or run with sudo available)"
  fi
}

apt_updated=
apt_install() {
  command -v apt-get >/dev/null || die "apt-get is not available; install these yourself: $*"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  say "installing $* (apt)"
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup first (https://rustup.rs)"

# The wasm32 target for the hydrated front end.
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown ||
    die "could not add the wasm32-unknown-unknown target; rustup needs to reach its distribution server once"
fi

# cargo-leptos drives the SSR + hydrate build. `no_downloads` turns a missing
# external tool into an error instead of a download attempt.
if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 30 minutes on 2 cores, once per machine)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

# The wasm-bindgen CLI must equal the wasm-bindgen crate in Cargo.lock exactly.
wasm_bindgen_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)
[ -n "$wasm_bindgen_version" ] || die "no wasm-bindgen in Cargo.lock"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wasm_bindgen_version" ]; then
  say "installing wasm-bindgen-cli $wasm_bindgen_version"
  # --locked can fail when the registry index lags behind the CLI's own lock file.
  cargo install wasm-bindgen-cli --version "$wasm_bindgen_version" --locked ||
    cargo install wasm-bindgen-cli --version "$wasm_bindgen_version"
fi

# wasm-opt from npm's binaryen: Debian's (version 108) produces wasm that
# Chromium refuses at hydration time.
command -v npm >/dev/null || apt_install nodejs npm
if [ "$(.tools/node_modules/.bin/wasm-opt --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ]; then
  say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION) into .tools/"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --no-save --loglevel=error "binaryen@$BINARYEN_VERSION"
fi

[ "$mode" = test ] || exit 0

# Trunk builds the client-only (static hosting) variant.
if [ "$(trunk --version 2>/dev/null | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  say "installing trunk $TRUNK_VERSION (about 8 minutes, once per machine)"
  cargo install trunk --version "$TRUNK_VERSION" --locked
fi

# Chromium for the browser tests; Playwright cannot download its own here.
[ -x /usr/bin/chromium ] || apt_install chromium

# moto, the S3-compatible server the audit trail's tests ship segments to.
moto=$(moto_venv)
if [ ! -f "$moto/installed" ]; then
  say "installing moto (PyPI, pinned by scripts/moto-requirements.txt) into $moto (about 3 minutes, once per machine)"
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  rm -rf "$moto"
  python3 -m venv "$moto"
  "$moto/bin/pip" install --quiet --disable-pip-version-check -r scripts/moto-requirements.txt ||
    die "could not install moto from PyPI"
  touch "$moto/installed" # only a complete install counts
fi

# Playwright, pinned by end2end/package-lock.json.
if [ ! -x end2end/node_modules/.bin/playwright ] ||
  [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "installing Playwright (npm ci in end2end/)"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
