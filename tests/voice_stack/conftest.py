"""Models load once per test session (they are the slow part); each is built the way an
agent's prewarm function builds it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from voice_helpers import require_local_stack


@pytest.fixture(scope="session")
def whisper() -> Any:
    require_local_stack("faster_whisper")
    from roomd.plugins.local.stt import WhisperSTT

    return WhisperSTT.load()


@pytest.fixture(scope="session")
def smollm2() -> Any:
    require_local_stack("llama_cpp")
    from roomd.plugins.local.llm import LocalLLM

    from roomd_example_receptionist.desk import TOOL_EXAMPLES

    return LocalLLM.load(tool_examples=TOOL_EXAMPLES)


@pytest.fixture()
def flite() -> Any:
    if shutil.which("flite") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("flite is required in CI (packaging/local-stack.sh)")
        pytest.skip("flite not installed")
    from roomd.plugins.local.tts import FliteTTS

    return FliteTTS()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1 serving SmolLM2: the base URL."""
    require_local_stack("llama_cpp.server.app")
    from roomd.plugins.local import weights

    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log = open(log_path, "wb")  # a file, not a pipe: the server logs every request
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(weights.smollm2_gguf()),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
         "--chat_format", "chatml-function-calling"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("llama_cpp.server did not listen within 60 s") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
