#!/usr/bin/env bash
# curl with the service API's signature headers (docs/SIGNING.md), for trying
# the API by hand. Needs openssl.
#
#   CEKPOT_KEY_ID=ops-local CEKPOT_SECRET=change-me \
#     scripts/signed-curl.sh METHOD PATH[?QUERY] [BODY] [IDEMPOTENCY_KEY] [more curl arguments...]
#
# The base URL is $CEKPOT_URL (default http://127.0.0.1:3000).
set -euo pipefail
: "${CEKPOT_KEY_ID:?set CEKPOT_KEY_ID to your key id}"
: "${CEKPOT_SECRET:?set CEKPOT_SECRET to the secret of your key}"
method=$1 target=$2 body=${3:-} idempotency_key=${4:-}
shift $(($# < 4 ? $# : 4))
path=${target%%\?*}
query=
[[ $target == *\?* ]] && query=$(tr '&' '\n' <<<"${target#*\?}" | sed '/^$/d' | LC_ALL=C sort | paste -sd '&' -)
timestamp=$(date +%s)
nonce=$(openssl rand -hex 16)
body_hash=$(printf '%s' "$body" | openssl dgst -sha256 -r | cut -d' ' -f1)
signature=$(printf 'CEKPOT1-HMAC-SHA256\n%s\n%s\n%s\n%s\n%s\n%s\n%s' "$method" "$path" "$query" "$timestamp" "$nonce" \
  "$idempotency_key" "$body_hash" |
  openssl dgst -sha256 -hmac "$CEKPOT_SECRET" -r | cut -d' ' -f1)
args=(-s -X "$method" "${CEKPOT_URL:-http://127.0.0.1:3000}$target"
  -H "x-cekpot-key-id: $CEKPOT_KEY_ID" -H "x-cekpot-timestamp: $timestamp"
  -H "x-cekpot-nonce: $nonce" -H "x-cekpot-signature: $signature")
[ -n "$body" ] && args+=(-H 'content-type: application/json' --data-binary "$body")
[ -n "$idempotency_key" ] && args+=(-H "idempotency-key: $idempotency_key")
exec curl "${args[@]}" "$@"
