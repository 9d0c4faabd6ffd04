#!/usr/bin/env bash
# Prepare a development environment on a fresh machine, then run the given command in it.
#
#   bash packaging/devenv.sh roomd run --dev      # the daemon on a local dev LiveKit server
#   bash packaging/devenv.sh python -m pytest     # the test suite
#
# Idempotent and quick after the first run: the virtualenv is reused until pyproject.toml
# files change, and livekit-server is built once into the user's cache directory.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${ROOMD_VENV:-$repo/.venv}
python=${PYTHON:-python3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/roomd
server_version=v1.13.5

say() { printf 'devenv: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
    say "creating virtualenv $venv"
    "$python" -m venv "$venv"
fi

# Everything pip installs is named by these files; reinstall only when they change.
mapfile -t manifests < <(cd "$repo" && ls pyproject.toml plugins/examples/*/pyproject.toml 2>/dev/null)
stamp="$venv/.roomd-install-stamp"
wanted=$(cd "$repo" && cat "${manifests[@]}" packaging/devenv.sh packaging/local-stack.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "installing roomd, the offline voice stack and the example plugins into $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    # First the local stack: the example receptionist depends on roomd[local], whose
    # llama-cpp-python has no binary wheel; local-stack.sh builds it once into a cache.
    PYTHON="$venv/bin/python" bash "$repo/packaging/local-stack.sh"
    examples=()
    for manifest in "${manifests[@]}"; do
        [ "$manifest" = pyproject.toml ] || examples+=(-e "$repo/$(dirname "$manifest")")
    done
    "$venv/bin/python" -m pip install -q -e "$repo[test]" "${examples[@]}"
    echo "$wanted" > "$stamp"
fi

if ! command -v livekit-server >/dev/null && [ ! -x "$cache/bin/livekit-server" ]; then
    say "building livekit-server $server_version into $cache/bin (a few minutes, once)"
    mkdir -p "$cache/bin"
    GOBIN="$cache/bin" go install "github.com/livekit/livekit-server/cmd/server@$server_version"
    mv -f "$cache/bin/server" "$cache/bin/livekit-server"
fi

# Debian's redis-server: the cluster tests (tests/cluster) run two livekit-server nodes that
# share one. The tests start their own on a free port; the package's service is not used.
if ! command -v redis-server >/dev/null; then
    say "installing Debian's redis-server (for the cluster tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q redis-server
fi

# Debian's qemu-system-x86 and cpio: tests/pool/test_memory_cgroup_v2_vm.py boots a kernel with
# cgroup v2 in a VM (packaging/vm-kernel.sh prepares the kernel and initramfs).
if { ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null; } \
    && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's qemu-system-x86 and cpio (the cgroup v2 VM test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends qemu-system-x86 cpio >/dev/null \
        || { apt-get update -q && apt-get install -y -q --no-install-recommends qemu-system-x86 cpio >/dev/null; }
fi

# The playground page's browser SDK (livekit-client from npm) and, for its browser tests,
# Debian's chromium; both once.
bash "$repo/packaging/web-client.sh" >/dev/null
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium (the playground's browser tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi

export PATH="$venv/bin:$PATH"
cd "$repo"
exec "$@"
