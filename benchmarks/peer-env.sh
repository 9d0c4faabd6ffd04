#!/usr/bin/env bash
# The peer for side-by-side benchmarks: livekit-agents in a venv of its own, outside the
# project. roomd never depends on it; only benchmarks/*.py --peer runs its python.
#
#   bash benchmarks/peer-env.sh          # creates ~/.cache/roomd/peer-venv (once), prints its python
set -euo pipefail

PEER_AGENTS_VERSION="${PEER_AGENTS_VERSION:-1.8.9}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/roomd"
venv="$cache/peer-venv"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"

if [[ -x "$venv/bin/python" ]] \
   && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('livekit-agents') != '$PEER_AGENTS_VERSION')" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi

# Built beside the old one and moved in place only once it works, so a failed install
# (another pinned version, no network) leaves a working peer venv as it was.
mkdir -p "$cache"
next="$venv.next"
rm -rf "$next"
trap 'rm -rf "$next"' EXIT
"$python" -m venv "$next" >&2
"$next/bin/python" -m pip install --quiet --upgrade pip >&2
"$next/bin/python" -m pip install --quiet "livekit-agents==$PEER_AGENTS_VERSION" >&2
rm -rf "$venv"
mv "$next" "$venv"
# Only `python -m ...` is used from this venv: its bin/ scripts' shebangs name the old path.
"$venv/bin/python" -c "import livekit.agents, importlib.metadata as m; print('livekit-agents', m.version('livekit-agents'))" >&2
echo "$venv/bin/python"
