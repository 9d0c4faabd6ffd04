"""Which of a session's metrics the daemon records, and how a job hands them over.

Operators see per-agent turn latencies in the supervisor's ``/metrics``; the session only
knows its own events. The samples are read from the very objects the components emit as
``metrics_collected`` (``roomd.agents.metrics``), so a third-party component's calls feed
the daemon's histograms without doing anything: its base class emits them. Inside a job the child runtime puts a reporter on the ``JobContext``
(it sends IPC ``Metrics``); outside a job (tests, notebooks) nothing is reported.

The mapping is the whole contract with the supervisor, which accepts exactly these names:
latencies a caller waits through, one number per turn. Token counts and audio durations stay
in ``metrics_collected`` for the plugin to use.
"""

from __future__ import annotations

import dataclasses
import math

from ..job import get_job_context
from ..metrics.base import EOUMetrics, LLMMetrics, RealtimeModelMetrics, STTMetrics, TTSMetrics

MAX_COMPONENT_LENGTH = 64  # a label value; component labels are class names, not prose
EOU_COMPONENT = "session"  # end of utterance is measured by the session, not a component

LLM_TTFT = "llm_ttft_seconds"
TTS_TTFB = "tts_ttfb_seconds"
STT_DURATION = "stt_duration_seconds"
END_OF_UTTERANCE_DELAY = "end_of_utterance_delay_seconds"
LATENCY_NAMES = (LLM_TTFT, TTS_TTFB, STT_DURATION, END_OF_UTTERANCE_DELAY)


@dataclasses.dataclass(frozen=True, slots=True)
class LatencySample:
    """One latency the daemon records: ``name`` is one of ``LATENCY_NAMES``."""

    name: str
    seconds: float
    component: str


def latency_sample(metrics: object) -> LatencySample | None:
    """The sample the daemon records for ``metrics``, or ``None`` when it records none.

    Negative values mean "never happened" (no first token, no audio: an error or a
    cancellation) and are not latencies. A streamed STT has no per-request duration.
    """
    if isinstance(metrics, LLMMetrics | RealtimeModelMetrics):
        return _sample(LLM_TTFT, metrics.ttft, metrics.label)
    if isinstance(metrics, TTSMetrics):
        return _sample(TTS_TTFB, metrics.ttfb, metrics.label)
    if isinstance(metrics, STTMetrics):
        return None if metrics.streamed else _sample(STT_DURATION, metrics.duration, metrics.label)
    if isinstance(metrics, EOUMetrics):
        return _sample(END_OF_UTTERANCE_DELAY, metrics.end_of_utterance_delay, EOU_COMPONENT)
    return None


def _sample(name: str, seconds: float, component: str) -> LatencySample | None:
    if not (math.isfinite(seconds) and seconds >= 0):
        return None
    return LatencySample(name=name, seconds=seconds, component=component[:MAX_COMPONENT_LENGTH])


def report_to_job(metrics: object) -> None:
    """Hand ``metrics`` to the running job's reporter, if there is a job and a sample."""
    sample = latency_sample(metrics)
    if sample is None:
        return
    try:
        ctx = get_job_context()
    except RuntimeError:
        return  # not inside a job: nobody to report to
    ctx._report_metric(sample)


__all__ = ["LATENCY_NAMES", "LatencySample", "latency_sample", "report_to_job"]
