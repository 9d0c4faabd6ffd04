#!/usr/bin/env bash
# Prepare (once) what a KVM virtual machine needs to boot a real Linux with the cgroup v2
# memory controller, for tests that cannot get one on the host (this project's machines bind
# the memory controller to cgroup v1). Prints the cache directory on stdout; it holds
#   vmlinuz      Debian 12's cloud kernel (serial console, cgroup v2, no modules needed)
#   base.cpio    an initramfs (newc) of the Debian 12 root packaging/nspawn-root.sh builds
#                (python3 3.11), without docs, locales and apt's caches; no /init: the test
#                appends a small archive of its own with /init and what it runs
#   kernel       the kernel package's name
#
# Cached under ${XDG_CACHE_HOME:-~/.cache}/roomd/vm/<recipe-hash>/ and rebuilt only when the
# recipe changes (this file, the nspawn root). Installs qemu-system-x86 and cpio with apt-get
# when they are missing; the kernel package comes from the machine's apt sources
# (apt-get download, unpacked with dpkg-deb; nothing is installed). Needs root.
#
# Usage: packaging/vm-kernel.sh            (build if needed, print the directory)
#        packaging/vm-kernel.sh --check    (print the directory if it is built, else exit 1)
set -euo pipefail

KERNEL_META=linux-image-cloud-amd64

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/roomd/vm"

root_dir="$(bash "$here/nspawn-root.sh" ${1:+"$1"})" || {
    [ "${1:-}" = --check ] && exit 1
    echo "vm-kernel: the Debian root (packaging/nspawn-root.sh) could not be built" >&2
    exit 1
}
recipe_hash="$( { cat "${BASH_SOURCE[0]}"; echo "$root_dir"; } | sha256sum | cut -c1-16)"
dest="$cache/$recipe_hash"

if [ -f "$dest/ready" ]; then
    echo "$dest"
    exit 0
fi
if [ "${1:-}" = --check ]; then
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "vm-kernel: building the initramfs needs root (the root's files are root's)" >&2
    exit 1
fi

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "vm-kernel: apt-get install ${missing[*]}" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second caller waits and then finds it built
if [ -f "$dest/ready" ]; then
    echo "$dest"
    exit 0
fi
rm -rf "$dest"
work="$cache/.build-$recipe_hash"
rm -rf "$work"
mkdir -p "$work"

# The versioned package the metapackage points at (the index may need a refresh first).
kernel="$(apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')"
if [ -z "$kernel" ]; then
    apt-get update -q >&2
    kernel="$(apt-cache depends "$KERNEL_META" | awk '/Depends: linux-image-/ {print $2; exit}')"
fi
echo "vm-kernel: apt-get download $kernel" >&2
(cd "$work" && apt-get download -q "$kernel" >&2)
# Only the kernel image: the initramfs boots without modules.
dpkg-deb --fsys-tarfile "$work"/"$kernel"_*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
mv "$work"/boot/vmlinuz-* "$work/vmlinuz"
rm -rf "$work/boot" "$work"/*.deb
echo "$kernel" > "$work/kernel"

echo "vm-kernel: initramfs of $root_dir" >&2
(cd "$root_dir" && find . \( -path ./usr/share/doc -o -path ./usr/share/man -o -path ./usr/share/locale \
        -o -path ./usr/share/info -o -path ./var/cache -o -path ./var/lib/apt -o -path ./var/log \
        -o -path ./usr/share/zoneinfo -o -path ./usr/lib/python3.11/test \) -prune -o -print \
    | cpio -o -H newc --quiet) > "$work/base.cpio"

mv "$work" "$dest"
touch "$dest/ready"
# Older recipes are dead weight.
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$recipe_hash" -exec rm -rf {} + 2>/dev/null || true
echo "$dest"
