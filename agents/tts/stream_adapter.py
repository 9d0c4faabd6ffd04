"""A streaming TTS made of a non-streaming one: streamed text is cut into sentences and
each sentence is synthesized as soon as it is complete."""

from __future__ import annotations

import enum

from ..tokenize.sentences import SentenceTokenizer
from ..types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions
from ..utils.aio import Chan
from ..utils.ids import shortuuid
from ..utils.streams import FLUSH
from ..utils.taskgroup import run_together
from .metrics import TTSMetrics
from .tts import TTS, ChunkedStream, SynthesizedAudio, SynthesizeStream, TTSCapabilities


class _SegmentEnd(enum.Enum):
    END = "END"


class StreamAdapter(TTS):
    """``stream()`` over ``tts.synthesize``: one request per sentence, in order. The
    first audio of a reply therefore waits only for its first sentence, not the whole
    text. ``synthesize`` passes straight through."""

    def __init__(self, *, tts: TTS, sentence_tokenizer: SentenceTokenizer | None = None) -> None:
        super().__init__(
            capabilities=TTSCapabilities(streaming=True),
            sample_rate=tts.sample_rate,
            num_channels=tts.num_channels,
        )
        self._tts = tts
        self._tokenizer = sentence_tokenizer or SentenceTokenizer()
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
        return _AdapterStream(adapter=self, conn_options=conn_options)

    async def aclose(self) -> None:
        self._tts.off("metrics_collected", self._forward_metrics)


class _AdapterStream(SynthesizeStream):
    def __init__(self, *, adapter: StreamAdapter, conn_options: APIConnectOptions) -> None:
        self._adapter = adapter
        super().__init__(tts=adapter, conn_options=conn_options)

    def _segment_done(self, segment_id: str, *, cancelled: bool = False) -> None:
        pass  # each sentence's synthesize() reports its own metrics

    async def _run(self) -> None:
        sentences: Chan[str | _SegmentEnd] = Chan()
        splitter = self._adapter._tokenizer.buffer()

        async def split() -> None:
            async for item in self._input_ch:
                if item is FLUSH:
                    for sentence in splitter.flush():
                        sentences.send_nowait(sentence)
                    sentences.send_nowait(_SegmentEnd.END)
                else:
                    for sentence in splitter.push(item):
                        sentences.send_nowait(sentence)
            sentences.close()

        async def speak() -> None:
            segment_id = shortuuid("seg_")
            held: SynthesizedAudio | None = None  # the last frame waits to learn if it is final
            separator = ""  # the tokenizer strips the space between sentences; the transcript needs it
            async for sentence in sentences:
                if sentence is _SegmentEnd.END:
                    if held is not None:
                        held.is_final = True
                        self._send(held)
                        held = None
                    segment_id = shortuuid("seg_")
                    separator = ""
                    continue
                async with self._adapter._tts.synthesize(sentence, conn_options=self._conn_options) as chunked:
                    first = True
                    async for audio in chunked:
                        if held is not None:
                            self._send(held)
                        held = SynthesizedAudio(
                            frame=audio.frame,
                            request_id=self._request_id,
                            segment_id=segment_id,
                            delta_text=separator + sentence if first else "",
                        )
                        first = False
                separator = " "

        await run_together(split(), speak())
