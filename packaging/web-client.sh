#!/usr/bin/env bash
# Fetches LiveKit's browser SDK (livekit-client, from the npm registry) for the playground
# page that `roomd run --dev` serves. It is never committed: the daemon serves it from
# ~/.cache/roomd/web (honouring XDG_CACHE_HOME) or /usr/share/roomd/web (the .deb).
#
#   packaging/web-client.sh            # into ~/.cache/roomd/web/livekit-client-<version>/
#   packaging/web-client.sh DIR        # into DIR/livekit-client-<version>/
#
# Prints the directory. Idempotent: nothing is fetched when the version is already there. Needs npm; installs
# Debian's nodejs and npm when neither is on PATH.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(tr -d '[:space:]' < "$root/daemon/ops/web/livekit-client.version")"
base="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/roomd/web}"
dest="$base/livekit-client-$version"

if [ -f "$dest/livekit-client.umd.js" ]; then
    echo "$dest"
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "web-client: installing Debian's nodejs and npm" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q nodejs npm
fi
echo "web-client: fetching livekit-client $version into $dest" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "livekit-client@$version" >/dev/null)
tar -xzf "$work/livekit-client-$version.tgz" -C "$work" \
    package/dist/livekit-client.umd.js package/LICENSE package/package.json
mkdir -p "$base"
# Assemble beside the target, then rename: a half-fetched copy is never served.
staging="$(mktemp -d "$base/.livekit-client-XXXXXX")"
install -m 0644 "$work/package/dist/livekit-client.umd.js" "$work/package/LICENSE" \
    "$work/package/package.json" "$staging/"
chmod 0755 "$staging"
mv -T "$staging" "$dest"
echo "$dest"
