#!/usr/bin/env bash
# Refreshes public/telegram-web-app.js, Telegram's Mini App script, from the
# npm registry (the one place here that carries it: the @twa-dev/sdk package
# ships Telegram's file unchanged as src/telegram-web-apps.js). The page loads
# it from our own origin: no CDN at run time. The pinned version and digest
# make the copy reproducible; to move to a newer script, change both, run this,
# and read the diff.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=8.0.2
SHA256=f4a03f7df8841ff5f232ad3a7416033df85594a23ce8b8cab64a82a9dad960d5

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@twa-dev/sdk@$VERSION" >/dev/null && tar xzf twa-dev-sdk-"$VERSION".tgz)
echo "$SHA256  $work/package/src/telegram-web-apps.js" | sha256sum --check --quiet
cp "$work/package/src/telegram-web-apps.js" public/telegram-web-app.js
echo "public/telegram-web-app.js: Telegram's script from @twa-dev/sdk@$VERSION (sha256 $SHA256)"
