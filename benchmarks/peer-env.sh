#!/usr/bin/env bash
# The peer for side-by-side benchmarks: livekit-agents in a venv of its own, outside the
# project. roomd never depends on it; only benchmarks/*.py --peer runs its python.
#
#   bash benchmarks/peer-env.sh          # creates ~/.cache/roomd/peer-venv (once), prints its python
set -euo pipefail

PEER_AGENTS_VERSION="${PEER_AGENTS_VERSION:-1.8.9}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/roomd"
venv="$cache/peer-venv"
python="${PYTHON:-python3.11}"

if [[ -x "$venv/bin/python" ]] \
   && "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('livekit-agents') != '$PEER_AGENTS_VERSION')" 2>/dev/null; then
  echo "$venv/bin/python"
  exit 0
fi

mkdir -p "$cache"
"$python" -m venv --clear "$venv" >&2
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
# psutil for the benchmark's memory readings, which run in the peer's own interpreter.
"$venv/bin/python" -m pip install --quiet "livekit-agents==$PEER_AGENTS_VERSION" psutil >&2
"$venv/bin/python" -c "import livekit.agents, importlib.metadata as m; print('livekit-agents', m.version('livekit-agents'))" >&2
echo "$venv/bin/python"
