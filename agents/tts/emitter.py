"""``AudioEmitter``: how a livekit-agents style TTS stream hands its audio to the base class.

The TTS ``_run(output_emitter)`` calls ``initialize`` once (request id, format), then
``push``es bytes as the provider sends them; a streaming TTS brackets each segment of
text with ``start_segment`` / ``end_segment``. The emitter cuts PCM into frames of
``frame_size_ms`` (decoding WAV, or other formats through PyAV when it is installed),
marks the last frame of a request or segment ``is_final`` and puts ``SynthesizedAudio``
into the stream's output channel.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from dataclasses import dataclass

from livekit import rtc

from ..utils.aio import Chan
from ..utils.audio import AudioByteStream, frame_duration


@dataclass(slots=True)
class SynthesizedAudio:
    frame: rtc.AudioFrame
    request_id: str
    is_final: bool = False  # the last frame of a request (chunked) or segment (stream)
    segment_id: str = ""
    delta_text: str = ""  # text this audio speaks, on the first frame of each piece


_RAW_MIME_PREFIXES = ("audio/pcm", "audio/raw", "audio/l16", "audio/x-raw")


class AudioEmitter:
    def __init__(
        self,
        *,
        label: str,
        dst_ch: Chan[SynthesizedAudio],
        on_segment_end: Callable[[str], None] | None = None,
    ) -> None:
        self.__label = label
        self.__dst = dst_ch
        self.__on_segment_end = on_segment_end
        self.__initialized = False
        self.__ended = False
        self.__stream = False
        self.__request_id = ""
        self.__sample_rate = 0
        self.__num_channels = 1
        self.__frame_samples = 0
        self.__raw = True
        self.__mime = ""
        self.__bytes: AudioByteStream | None = None
        self.__encoded = bytearray()  # an encoded format is decoded once its piece is complete
        self.__held: SynthesizedAudio | None = None  # the last frame waits to learn if it is final
        self.__segment_id: str | None = None
        self.__durations: list[float] = []
        self.__text = ""

    # -- set up ----------------------------------------------------------------------------

    def initialize(
        self,
        *,
        request_id: str,
        sample_rate: int,
        num_channels: int,
        mime_type: str,
        frame_size_ms: int = 200,
        stream: bool = False,
    ) -> None:
        if self.__initialized:
            raise RuntimeError(f"{self.__label}: AudioEmitter.initialize() called twice")
        if sample_rate <= 0 or num_channels <= 0 or frame_size_ms <= 0:
            raise ValueError(
                f"{self.__label}: AudioEmitter needs positive sample_rate, num_channels and "
                f"frame_size_ms (got {sample_rate}, {num_channels}, {frame_size_ms})"
            )
        self.__initialized = True
        self.__request_id = request_id
        self.__sample_rate = sample_rate
        self.__num_channels = num_channels
        self.__frame_samples = max(1, sample_rate * frame_size_ms // 1000)
        self.__mime = mime_type.lower()
        self.__raw = self.__mime.startswith(_RAW_MIME_PREFIXES)
        self.__stream = stream
        self.__bytes = AudioByteStream(sample_rate, num_channels, self.__frame_samples)
        if not stream:
            self.__durations.append(0.0)

    @property
    def num_segments(self) -> int:
        return len(self.__durations) if self.__stream else 0

    def pushed_duration(self, idx: int = -1) -> float:
        """Seconds of audio emitted in segment ``idx`` (the whole request when not streaming)."""
        if not self.__durations:
            return 0.0
        return self.__durations[idx]

    # -- segments (streaming) -------------------------------------------------------------

    def start_segment(self, *, segment_id: str) -> None:
        self.__check_open()
        if not self.__stream:
            raise RuntimeError(f"{self.__label}: start_segment() needs initialize(stream=True)")
        if self.__segment_id is not None:
            self.end_segment()
        self.__segment_id = segment_id
        self.__durations.append(0.0)

    def end_segment(self) -> None:
        self.__check_open()
        if not self.__stream:
            raise RuntimeError(f"{self.__label}: end_segment() needs initialize(stream=True)")
        if self.__segment_id is None:
            return
        self.__drain(final=True)
        segment_id, self.__segment_id = self.__segment_id, None
        if self.__on_segment_end is not None:
            self.__on_segment_end(segment_id)

    # -- audio ----------------------------------------------------------------------------

    def push(self, data: bytes) -> None:
        self.__check_open()
        if self.__stream and self.__segment_id is None:
            raise RuntimeError(f"{self.__label}: push() before start_segment()")
        assert self.__bytes is not None
        if self.__raw:
            for frame in self.__bytes.push(data):
                self.__emit(frame)
        else:
            self.__encoded.extend(data)

    def push_timed_transcript(self, delta_text: str | list[str]) -> None:
        """Text spoken by the audio pushed next (word timings are kept only as text)."""
        self.__check_open()
        self.__text += "".join(delta_text) if isinstance(delta_text, list) else str(delta_text)

    def flush(self) -> None:
        """Emit the audio buffered so far. In a stream this ends the current segment."""
        if not self.__initialized or self.__ended:
            return
        if self.__stream:
            self.end_segment()
        else:
            self.__drain(final=False)

    def end_input(self) -> None:
        """No more audio: the held last frame goes out marked final."""
        if self.__ended:
            return
        if self.__initialized:
            if self.__stream:
                self.end_segment()
            else:
                self.__drain(final=True)
        self.__ended = True

    async def join(self) -> None:
        """Wait until everything pushed has been emitted (emission is synchronous here)."""

    async def aclose(self) -> None:
        self.__ended = True

    # -- internals ------------------------------------------------------------------------

    def __check_open(self) -> None:
        if not self.__initialized:
            raise RuntimeError(f"{self.__label}: AudioEmitter.initialize() must be called first")
        if self.__ended:
            raise RuntimeError(f"{self.__label}: AudioEmitter input already ended")

    def __drain(self, *, final: bool) -> None:
        assert self.__bytes is not None
        if not self.__raw and self.__encoded:
            for frame in self.__decode(bytes(self.__encoded)):
                self.__emit(frame)
            self.__encoded.clear()
        for frame in self.__bytes.flush():
            self.__emit(frame)
        if not final:
            return  # the last frame stays held: only the end says it is final
        if self.__held is not None:
            held, self.__held = self.__held, None
            held.is_final = True
            self.__dst.send_nowait(held)

    def __emit(self, frame: rtc.AudioFrame) -> None:
        if frame.samples_per_channel == 0:
            return
        self.__durations[-1] += frame_duration(frame)
        if self.__held is not None:
            self.__dst.send_nowait(self.__held)
        self.__held = SynthesizedAudio(
            frame=frame,
            request_id=self.__request_id,
            segment_id=self.__segment_id or "",
            delta_text=self.__text,
        )
        self.__text = ""

    def __decode(self, data: bytes) -> list[rtc.AudioFrame]:
        if "wav" in self.__mime:
            with wave.open(io.BytesIO(data)) as w:
                if w.getsampwidth() != 2:
                    raise ValueError(f"{self.__label}: only 16-bit WAV is supported, got {8 * w.getsampwidth()}-bit")
                pcm = w.readframes(w.getnframes())
                chunker = AudioByteStream(w.getframerate(), w.getnchannels(), self.__frame_samples)
            return chunker.push(pcm) + chunker.flush()
        return _decode_with_av(data, self.__mime, self.__label, self.__frame_samples)


def _decode_with_av(data: bytes, mime: str, label: str, frame_samples: int) -> list[rtc.AudioFrame]:
    try:
        import av  # PyAV: an optional dependency, only needed for compressed formats
    except ImportError as exc:
        raise ValueError(
            f"{label}: decoding {mime} audio needs PyAV (pip install av); push audio/pcm or audio/wav instead"
        ) from exc
    frames: list[rtc.AudioFrame] = []
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono" if stream.channels == 1 else "stereo")
        chunker: AudioByteStream | None = None
        for decoded in container.decode(stream):
            for out in resampler.resample(decoded):
                if chunker is None:
                    chunker = AudioByteStream(out.sample_rate, len(out.layout.channels), frame_samples)
                frames.extend(chunker.push(bytes(out.planes[0])[: out.samples * 2 * len(out.layout.channels)]))
        if chunker is not None:
            frames.extend(chunker.flush())
    return frames
