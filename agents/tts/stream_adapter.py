"""A streaming TTS made of a non-streaming one: streamed text is cut into sentences and
each sentence is synthesized as soon as it is complete."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ..tokenize.sentences import SentenceTokenizer
from ..types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr, is_given
from ..utils.aio import Chan, ChanClosed, ChanEmpty
from ..utils.audio import frame_duration
from ..utils.ids import shortuuid
from ..utils.streams import FLUSH
from ..utils.taskgroup import run_together
from .metrics import TTSMetrics
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities


@dataclass(frozen=True, slots=True)
class SentenceStreamPacer:
    """Holds sentences back while enough audio is queued ahead of the listener, then
    sends what has gathered as one request (at most ``max_text_length`` characters).

    Fewer, longer requests sound more natural and cost less; the first sentence of a
    reply still goes out at once. ``min_remaining_audio``: seconds of audio not yet
    heard below which the next batch is sent.
    """

    min_remaining_audio: float = 5.0
    max_text_length: int = 300

    def __post_init__(self) -> None:
        if self.min_remaining_audio < 0 or self.max_text_length <= 0:
            raise ValueError(
                "SentenceStreamPacer needs min_remaining_audio >= 0 and max_text_length > 0, "
                f"got {self.min_remaining_audio}, {self.max_text_length}"
            )


class StreamAdapter(TTS):
    """``stream()`` over ``tts.synthesize``: one request per sentence, in order. The
    first audio of a reply therefore waits only for its first sentence, not the whole
    text. ``text_pacing`` (``True`` or a ``SentenceStreamPacer``) batches later
    sentences while audio is queued. ``synthesize`` passes straight through."""

    def __init__(
        self,
        *,
        tts: TTS,
        sentence_tokenizer: NotGivenOr[SentenceTokenizer | None] = NOT_GIVEN,
        text_pacing: SentenceStreamPacer | bool = False,
    ) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=True),
            sample_rate=tts.sample_rate,
            num_channels=tts.num_channels,
        )
        self._tts = tts
        self._tokenizer = sentence_tokenizer if is_given(sentence_tokenizer) and sentence_tokenizer else SentenceTokenizer()
        if text_pacing is True:
            text_pacing = SentenceStreamPacer()
        self._pacer: SentenceStreamPacer | None = text_pacing or None
        tts.on("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, metrics: TTSMetrics) -> None:
        self.emit("metrics_collected", metrics)

    @property
    def wrapped_tts(self) -> TTS:
        return self._tts

    @property
    def label(self) -> str:
        return f"StreamAdapter({self._tts.label})"

    def synthesize(self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> ChunkedStream:
        return self._tts.synthesize(text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> SynthesizeStream:
        return StreamAdapterWrapper(tts=self, conn_options=conn_options)

    async def aclose(self) -> None:
        self._tts.off("metrics_collected", self._forward_metrics)


class _SegmentEnd:
    pass


_SEGMENT_END = _SegmentEnd()


class StreamAdapterWrapper(SynthesizeStream):
    """The stream ``StreamAdapter.stream()`` returns."""

    def __init__(self, *, tts: StreamAdapter, conn_options: APIConnectOptions) -> None:
        self.__adapter = tts
        super().__init__(tts=tts, conn_options=conn_options)

    def _segment_done(self, segment_id: str, *, cancelled: bool = False) -> None:
        pass  # each sentence's synthesize() reports its own metrics

    async def _run(self) -> None:
        adapter = self.__adapter
        sentences: Chan[str | _SegmentEnd] = Chan()
        splitter = adapter._tokenizer.buffer()

        async def split() -> None:
            async for item in self._input_ch:
                if item is FLUSH:
                    for sentence in splitter.flush():
                        sentences.send_nowait(sentence)
                    sentences.send_nowait(_SEGMENT_END)
                else:
                    for sentence in splitter.push(item):  # type: ignore[arg-type]
                        sentences.send_nowait(sentence)
            sentences.close()

        async def speak() -> None:
            segment_id = shortuuid("seg_")
            held: SynthesizedAudio | None = None  # the last frame waits to learn if it is final
            separator = ""  # the tokenizer strips the space between sentences; the transcript needs it
            clock = _AudioClock()
            ahead = _Lookahead(sentences)
            while (item := await ahead.next()) is not None:
                if isinstance(item, _SegmentEnd):
                    if held is not None:
                        held.is_final = True
                        self._send(held)
                        held = None
                    segment_id = shortuuid("seg_")
                    separator = ""
                    clock = _AudioClock()
                    continue
                text = item
                if adapter._pacer is not None and clock.started:
                    text = await self.__gather(text, ahead, adapter._pacer, clock)
                async with adapter._tts.synthesize(text, conn_options=self._conn_options) as chunked:
                    first = True
                    async for audio in chunked:
                        if held is not None:
                            self._send(held)
                        clock.add(frame_duration(audio.frame))
                        held = SynthesizedAudio(
                            frame=audio.frame,
                            request_id=self._request_id,
                            segment_id=segment_id,
                            delta_text=separator + text if first else "",
                        )
                        first = False
                separator = " "

        await run_together(split(), speak())

    @staticmethod
    async def __gather(text: str, ahead: _Lookahead, pacer: SentenceStreamPacer, clock: _AudioClock) -> str:
        """Wait while more than ``min_remaining_audio`` is queued ahead of the listener,
        then join the sentences that arrived meanwhile (up to ``max_text_length``)."""
        wait = clock.remaining() - pacer.min_remaining_audio
        if wait > 0:
            await asyncio.sleep(wait)
        while len(text) < pacer.max_text_length:
            nxt = ahead.peek_nowait()
            if not isinstance(nxt, str) or len(text) + 1 + len(nxt) > pacer.max_text_length:
                break
            ahead.consume()
            text = f"{text} {nxt}"
        return text


class _Lookahead:
    """A channel reader that can look at the next item already there without taking it."""

    def __init__(self, chan: Chan[str | _SegmentEnd]) -> None:
        self._chan = chan
        self._peeked: list[str | _SegmentEnd] = []

    async def next(self) -> str | _SegmentEnd | None:
        """The next item, or None once the channel is closed and drained."""
        if self._peeked:
            return self._peeked.pop()
        try:
            return await self._chan.recv()
        except ChanClosed:
            return None

    def peek_nowait(self) -> str | _SegmentEnd | None:
        if not self._peeked:
            try:
                self._peeked.append(self._chan.recv_nowait())
            except (ChanEmpty, ChanClosed):
                return None
        return self._peeked[0]

    def consume(self) -> None:
        self._peeked.pop()


class _AudioClock:
    """Audio produced for a segment against wall time since its first audio: what is
    still queued ahead of a listener playing it in real time."""

    def __init__(self) -> None:
        self._first: float | None = None
        self._produced = 0.0

    @property
    def started(self) -> bool:
        return self._first is not None

    def add(self, seconds: float) -> None:
        if self._first is None:
            self._first = time.monotonic()
        self._produced += seconds

    def remaining(self) -> float:
        if self._first is None:
            return 0.0
        return max(0.0, self._produced - (time.monotonic() - self._first))
