#!/usr/bin/env bash
# Build (once) a minimal Debian 12 root that boots a real systemd under systemd-nspawn,
# for tests/systemd. Prints the root's path on stdout.
#
# The root is cached under ${XDG_CACHE_HOME:-~/.cache}/roomd/nspawn/<recipe-hash>/root and
# rebuilt only when the recipe changes (this file, the mirror, the host's extra CA
# certificates). Packages come from the machine's own Debian mirror (its apt sources).
# Installs debootstrap and systemd-container on the host with apt-get when they are missing,
# so a fresh CI machine needs nothing else. Needs root.
#
# Usage: packaging/nspawn-root.sh            (build if needed, print the root)
#        packaging/nspawn-root.sh --check    (print the root if it is built, else exit 1)
set -euo pipefail

SUITE=bookworm
# What roomd's .deb depends on (python3, python3-venv, systemd) plus what booting and the
# tests need: systemd-sysv (init), dbus (systemctl talks to PID 1 over it), ca-certificates.
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates,procps

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

mirror() {
    # The first Debian (not -security) URI in the host's apt sources, deb822 or one-line.
    local uri
    uri="$(awk '/^URIs:/ {u=$2} /^Suites:/ && u != "" && $0 ~ /'"$SUITE"'( |$)/ {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    if [ -z "$uri" ]; then
        uri="$(awk '$1 == "deb" && $0 ~ / '"$SUITE"' / {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

host_certs() {
    find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | sort
}

MIRROR="$(mirror)"
recipe_hash="$( { cat "${BASH_SOURCE[0]}"; echo "$MIRROR"; host_certs | xargs -r cat; } \
    | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/roomd/nspawn"
dest="$cache/$recipe_hash"

if [ -f "$dest/ready" ]; then
    echo "$dest/root"
    exit 0
fi
if [ "${1:-}" = --check ]; then
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "nspawn-root: building the root needs root (debootstrap)" >&2
    exit 1
fi

missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "nspawn-root: apt-get install ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second caller waits and then finds it built
if [ -f "$dest/ready" ]; then
    echo "$dest/root"
    exit 0
fi
rm -rf "$dest"
work="$cache/.build-$recipe_hash"
rm -rf "$work"
mkdir -p "$work"
echo "nspawn-root: debootstrap $SUITE from $MIRROR into $work/root (a few minutes)" >&2
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/root" "$MIRROR" >&2

root="$work/root"
echo roomd-test > "$root/etc/hostname"
# The host's extra CAs (a proxy's), so apt and pip inside trust what the host trusts.
if [ -n "$(host_certs)" ]; then
    host_certs | xargs -I{} cp {} "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >&2
fi
# Nothing in a test boot needs these, and they slow it or fail without hardware.
for unit in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer dpkg-db-backup.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# Keep the journal in memory: the root is mounted read-only with a volatile overlay.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/volatile.conf"
chroot "$root" apt-get clean >&2

mv "$work" "$dest"
touch "$dest/ready"
# Older recipes are dead weight.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$recipe_hash" ! -name 'wheels*' \
    -exec rm -rf {} + 2>/dev/null || true
echo "$dest/root"
