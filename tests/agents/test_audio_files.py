"""``utils.audio.audio_frames_from_file`` decodes real wav, ogg/opus and mp3 files (made here
with the stdlib and PyAV's encoders), and the built-in background clips are playable files."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest

from roomd.agents import BuiltinAudioClip
from roomd.agents.utils.audio import audio_frames_from_file, frame_rms


def tone(seconds: float, rate: int, channels: int, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * frequency * t)
    return np.repeat(mono[:, None], channels, axis=1)  # (samples, channels)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype(np.int16).tobytes())


def write_encoded(path: Path, samples: np.ndarray, rate: int, fmt: str, codec: str) -> None:
    layout = "mono" if samples.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        pcm = (samples * 32767).astype(np.int16)
        step = 1024
        for start in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[start:start + step].reshape(1, -1), format="s16", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


async def decode(path: Path, **kwargs: int) -> tuple[float, set[int], set[int], float]:
    frames = [f async for f in audio_frames_from_file(str(path), **kwargs)]
    seconds = sum(f.samples_per_channel / f.sample_rate for f in frames)
    loudest = max(frame_rms(f) for f in frames)
    return seconds, {f.sample_rate for f in frames}, {f.num_channels for f in frames}, loudest


@pytest.mark.parametrize(
    ("name", "rate", "channels", "encoder"),
    [
        ("tone.wav", 16000, 2, None),
        ("tone.ogg", 48000, 1, ("ogg", "libopus")),
        ("tone.mp3", 44100, 2, ("mp3", "libmp3lame")),
    ],
)
async def test_files_decode_to_the_requested_rate_and_channels(tmp_path: Path, name: str, rate: int,
                                                                channels: int, encoder: tuple[str, str] | None) -> None:
    path = tmp_path / name
    samples = tone(1.5, rate, channels)
    if encoder is None:
        write_wav(path, samples, rate)
    else:
        write_encoded(path, samples, rate, *encoder)

    seconds, rates, layouts, loudest = await decode(path)  # defaults: 48 kHz mono
    assert rates == {48000} and layouts == {1}
    # lossy codecs add their priming/padding: tens of milliseconds at most
    assert seconds == pytest.approx(1.5, abs=0.08)
    assert loudest == pytest.approx(0.4 / np.sqrt(2), rel=0.15)  # a 0.4 sine's RMS survives

    seconds, rates, layouts, _ = await decode(path, sample_rate=24000, num_channels=2)
    assert rates == {24000} and layouts == {2}
    assert seconds == pytest.approx(1.5, abs=0.08)


async def test_bad_files_are_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.ogg"):
        async for _ in audio_frames_from_file(str(tmp_path / "missing.ogg")):
            pass
    junk = tmp_path / "notes.ogg"
    junk.write_text("these are not sounds")
    with pytest.raises(ValueError, match="notes.ogg"):
        async for _ in audio_frames_from_file(str(junk)):
            pass
    with pytest.raises(ValueError, match="num_channels"):
        async for _ in audio_frames_from_file(str(junk), num_channels=3):
            pass


async def test_builtin_clips_are_made_once_and_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for clip, shortest in ((BuiltinAudioClip.OFFICE_AMBIENCE, 10.0), (BuiltinAudioClip.KEYBOARD_TYPING, 7.0),
                           (BuiltinAudioClip.KEYBOARD_TYPING2, 3.0)):
        path = Path(clip.path())
        assert path.is_relative_to(tmp_path) and path.stat().st_size < 150_000  # small
        written = path.stat().st_mtime_ns
        assert Path(clip.path()).stat().st_mtime_ns == written  # cached, not rewritten
        seconds, rates, _, loudest = await decode(path)
        assert seconds > shortest and rates == {48000}
        assert 0.005 < loudest < 0.6  # audible, not clipping


def test_audio_byte_stream_cuts_bytes_into_equal_frames() -> None:
    from roomd.agents.utils.audio import AudioByteStream, calculate_audio_duration, combine_frames

    stream = AudioByteStream(16000, 2, samples_per_channel=160)  # 10 ms stereo frames
    pcm = np.arange(16000 * 2 // 4 * 2 + 3, dtype=np.int16).tobytes()[:-1]  # odd byte count
    frames = [f for start in range(0, len(pcm), 999) for f in stream.write(pcm[start:start + 999])]
    frames += stream.flush()
    assert all(f.samples_per_channel == 160 for f in frames[:-1]) and frames[-1].samples_per_channel < 160
    assert bytes(combine_frames(frames).data) == pcm[: len(pcm) // 4 * 4]  # nothing lost but a half sample
    assert calculate_audio_duration(frames) == pytest.approx((len(pcm) // 4) / 16000)


async def test_a_reader_cancelled_mid_slice_closes_the_file_after_that_slice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A background sound stopped while its next slice decodes in a worker thread: the file
    # must not be closed under that thread (FFmpeg crashes the process: a SIGSEGV seen in a job).
    import asyncio
    import threading
    import time

    from roomd.agents.utils.audio_decode import Decoder

    path = tmp_path / "long.ogg"
    write_encoded(path, tone(3.0, 48000, 1), 48000, "ogg", "libopus")
    converting = threading.Event()
    order: list[str] = []
    convert, close = Decoder._to_rtc, Decoder.close

    def slow_convert(self: Decoder, frame: object) -> object:
        if not converting.is_set():
            converting.set()
            time.sleep(0.3)  # the consumer is cancelled meanwhile
            order.append("converted")
        return convert(self, frame)

    def recorded_close(self: Decoder) -> None:
        close(self)
        order.append("closed")

    monkeypatch.setattr(Decoder, "_to_rtc", slow_convert)
    monkeypatch.setattr(Decoder, "close", recorded_close)

    async def play() -> None:
        async for _frame in audio_frames_from_file(str(path)):
            pass

    task = asyncio.ensure_future(play())
    await asyncio.to_thread(converting.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert order == ["converted", "closed"]
    decoder = Decoder(str(path), 48000, 1)
    decoder.close()
    assert decoder.next_slice() == []  # closed: nothing more, no touching the container
