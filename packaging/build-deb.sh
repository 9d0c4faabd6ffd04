#!/usr/bin/env bash
# Build dist/roomd_<version>_all.deb with dpkg-deb.
#
# Contents: the roomd wheel (/usr/share/roomd), the systemd unit (/lib/systemd/system),
# /etc/roomd/roomd.toml (a conffile: dpkg keeps the operator's edits on upgrade), the
# secrets template, the playground page's browser SDK (/usr/share/roomd/web, fetched
# from npm by web-client.sh), and maintainer scripts. postinst makes /opt/roomd/venv and installs
# the wheel into it (its dependencies come from the package index pip is configured
# with), and creates /etc/roomd/roomd.env (0600, root) once. The service is not started:
# it needs the LiveKit credentials first. On an upgrade a running service is restarted
# (drained, then started from the new version); a stopped one stays stopped.
#
# Usage: packaging/build-deb.sh [OUTPUT_DIR]      (default: dist/)
# Environment: PYTHON (default: .venv/bin/python, else python3) builds the wheel.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-$here/dist}" && cd "${1:-$here/dist}" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$here/.venv/bin/python" ]; then python="$here/.venv/bin/python"; else python=python3; fi
fi
version="$("$python" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$here/pyproject.toml")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Build offline with the local setuptools when it can make wheels; otherwise pip's build
# isolation fetches the build backend from the configured package index.
isolation=()
if "$python" -c 'import setuptools, wheel' 2>/dev/null; then isolation=(--no-build-isolation); fi
"$python" -m pip wheel --quiet --no-deps "${isolation[@]}" --wheel-dir "$work/wheel" "$here" >&2
wheel="$(cd "$work/wheel" && ls roomd-"$version"-*.whl)"

root="$work/root"
install -d "$root/DEBIAN" "$root/usr/share/roomd" "$root/lib/systemd/system" "$root/etc/roomd" \
    "$root/usr/share/doc/roomd"
install -m 0644 "$work/wheel/$wheel" "$root/usr/share/roomd/$wheel"
install -m 0644 "$here/packaging/roomd.service" "$root/lib/systemd/system/roomd.service"
install -m 0644 "$here/etc/roomd.toml" "$root/etc/roomd/roomd.toml"
install -m 0644 "$here/packaging/roomd.env.example" "$root/usr/share/roomd/roomd.env.example"
install -m 0644 "$here/docs/operations.md" "$root/usr/share/doc/roomd/operations.md"
# The playground's browser SDK (livekit-client, from npm), where the daemon looks for it.
client="$(bash "$here/packaging/web-client.sh")"
install -d "$root/usr/share/roomd/web"
cp -r "$client" "$root/usr/share/roomd/web/"

cat > "$root/DEBIAN/control" <<CONTROL
Package: roomd
Version: $version
Architecture: all
Maintainer: roomd maintainers <roomd@localhost>
Depends: python3 (>= 3.11), python3-venv, systemd
Section: net
Priority: optional
Description: runs LiveKit voice-agent plugins as a supervised system service
 roomd registers agent plugins with a LiveKit server, runs every job in a
 prewarmed child process, reloads new agent code without dropping calls and
 reports health and Prometheus metrics on 127.0.0.1:8081.
CONTROL
echo /etc/roomd/roomd.toml > "$root/DEBIAN/conffiles"

cat > "$root/DEBIAN/postinst" <<POSTINST
#!/bin/sh
set -e
if [ "\$1" = configure ]; then
    if [ ! -x /opt/roomd/venv/bin/python ]; then
        python3 -m venv /opt/roomd/venv
    fi
    /opt/roomd/venv/bin/python -m pip install --quiet --upgrade /usr/share/roomd/$wheel
    if [ ! -e /etc/roomd/roomd.env ]; then
        install -m 0600 -o root -g root /usr/share/roomd/roomd.env.example /etc/roomd/roomd.env
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        # Restart, never reload: a reload keeps the old supervisor running the old code.
        # A running daemon drains its calls (up to TimeoutStopSec), then the new version starts.
        systemctl try-restart roomd.service || true
    fi
fi
exit 0
POSTINST

cat > "$root/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop roomd.service || true
fi
exit 0
PRERM

cat > "$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /opt/roomd
    rm -f /etc/roomd/roomd.env
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
exit 0
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"

deb="$out/roomd_${version}_all.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >&2
echo "$deb"
