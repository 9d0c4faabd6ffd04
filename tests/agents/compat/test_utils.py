"""The utilities plugin authors use from livekit-agents, under the same names."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from roomd.agents import utils
from roomd.agents.tokenize import BufferedSentenceStream, WordStream, basic
from roomd.agents.tokenize.utils import replace_words
from roomd.agents.types import NOT_GIVEN, NotGiven
from roomd.agents.utils import aio

sys.path.insert(0, str(Path(__file__).parent.parent / "voice"))
from room_helpers import Participant, connect

# -- NOT_GIVEN --------------------------------------------------------------------------


def test_is_given_tells_not_given_from_none_and_falsy() -> None:
    assert not utils.is_given(NOT_GIVEN) and not NOT_GIVEN
    assert all(utils.is_given(v) for v in (None, 0, "", False))
    assert isinstance(utils.NOT_GIVEN, NotGiven) and repr(NOT_GIVEN) == "NOT_GIVEN"


# -- aio.Chan ---------------------------------------------------------------------------


async def test_chan_send_recv_nowait_close_and_iteration() -> None:
    ch: aio.Chan[int] = aio.Chan()
    with pytest.raises(aio.ChanEmpty):
        ch.recv_nowait()
    await ch.send(1)
    ch.send_nowait(2)
    assert ch.qsize() == 2 and ch.recv_nowait() == 1
    ch.send_nowait(3)
    ch.close()
    with pytest.raises(aio.ChanClosed):
        ch.send_nowait(4)
    assert [x async for x in ch] == [2, 3]
    with pytest.raises(aio.ChanClosed):
        await ch.recv()
    with pytest.raises(aio.ChanClosed):
        ch.recv_nowait()


async def test_bounded_chan_send_waits_for_room() -> None:
    ch: aio.Chan[int] = aio.Chan(maxsize=1)
    ch.send_nowait(1)
    assert ch.full()
    with pytest.raises(aio.ChanFull):
        ch.send_nowait(2)
    sender = asyncio.create_task(ch.send(2))
    await asyncio.sleep(0)
    assert not sender.done()  # no room yet
    assert await ch.recv() == 1
    await asyncio.wait_for(sender, 1)
    assert ch.recv_nowait() == 2


async def test_chan_recv_wakes_on_send_and_closed_with_error_raises_it() -> None:
    ch: aio.Chan[str] = aio.Chan()
    waiter = asyncio.create_task(ch.recv())
    await asyncio.sleep(0)
    ch.send_nowait("hi")
    assert await asyncio.wait_for(waiter, 1) == "hi"
    ch.close(ValueError("provider failed"))
    with pytest.raises(ValueError, match="provider failed"):
        await ch.recv()


# -- aio timing helpers -----------------------------------------------------------------


async def test_interval_ticks_at_once_then_every_interval() -> None:
    loop = asyncio.get_running_loop()
    ticker = aio.interval(0.02)
    started = loop.time()
    assert await ticker.tick() == 0
    first = loop.time()
    assert await ticker.tick() == 1
    second = loop.time()
    counts = []
    async for count in ticker:
        counts.append(count)
        if count == 3:
            break
    assert counts == [2, 3]
    assert first - started < 0.02 <= second - first + 1e-3  # the first tick does not wait


async def test_sleep_is_awaitable_and_reset_moves_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await aio.sleep(0.01)
    assert loop.time() - started >= 0.01 - 1e-3
    timer = aio.sleep(0.05)
    waiter = asyncio.create_task(_await(timer))
    await asyncio.sleep(0.03)
    reset_at = loop.time()
    timer.reset(0.05)
    await asyncio.wait_for(waiter, 1)
    assert loop.time() - reset_at >= 0.05 - 1e-3  # counted from the reset, not the start
    with pytest.raises(aio.SleepFinished):
        timer.reset()
    cancelled = aio.sleep(10)
    task = asyncio.create_task(_await(cancelled))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _await(awaitable: Any) -> None:
    await awaitable


async def test_cancel_and_wait_and_gracefully_cancel_swallow_task_errors() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    async def failing() -> None:
        raise RuntimeError("boom")

    a, b = asyncio.create_task(forever()), asyncio.create_task(failing())
    await asyncio.sleep(0)
    await aio.cancel_and_wait(a, b, None)
    assert a.cancelled() and b.done()
    c = asyncio.create_task(forever())
    await aio.gracefully_cancel(c)
    assert c.cancelled()


async def test_task_set_keeps_tasks_until_done_and_cancels_on_close() -> None:
    tasks = aio.TaskSet()
    done = tasks.create_task(asyncio.sleep(0))
    pending = tasks.create_task(asyncio.Event().wait())
    await done
    await asyncio.sleep(0)
    assert tasks.tasks == {pending}
    await tasks.aclose()
    assert pending.cancelled()
    with pytest.raises(RuntimeError, match="closed"):
        tasks.create_task(asyncio.sleep(0))


async def test_log_exceptions_logs_and_reraises(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.compat")

    @utils.log_exceptions(msg="job failed", logger=log)
    async def job() -> None:
        raise KeyError("x")

    @utils.log_exceptions(logger=log)
    def sync_job() -> int:
        raise ValueError("y")

    with caplog.at_level(logging.ERROR, logger="test.compat"):
        with pytest.raises(KeyError):
            await job()
        with pytest.raises(ValueError):
            sync_job()
    assert [r.getMessage() for r in caplog.records] == ["job failed", f"error in {sync_job.__qualname__.replace('.<locals>', '.<locals>')}"]
    assert all(r.exc_info for r in caplog.records)


# -- numbers and ids --------------------------------------------------------------------


def test_exp_filter_smooths_and_caps() -> None:
    f = utils.ExpFilter(alpha=0.5, max_val=10.0)
    assert f.filtered() == -1.0
    assert f.apply(1.0, 4.0) == 4.0  # the first sample is taken as is
    assert f.apply(1.0, 8.0) == 6.0
    assert f.apply(2.0, 2.0) == pytest.approx(0.25 * 6.0 + 0.75 * 2.0)
    assert f.apply(1.0, 100.0) == 10.0
    f.reset(0.9)
    assert f.filtered() == -1.0 and f.apply(1.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="alpha"):
        utils.ExpFilter(alpha=0.0)


def test_moving_average_over_the_last_window() -> None:
    m = utils.MovingAverage(3)
    assert m.get_avg() == 0.0 and m.size() == 0
    for sample in (1.0, 2.0, 3.0, 10.0):
        m.add_sample(sample)
    assert m.size() == 3 and m.get_avg() == pytest.approx(5.0)
    m.reset()
    assert m.size() == 0


def test_bounded_dict_forgets_the_oldest() -> None:
    d: utils.BoundedDict[str, int] = utils.BoundedDict(maxsize=2)
    d["a"], d["b"] = 1, 2
    d["a"] = 3  # an update keeps its place: "a" is still the oldest
    d["c"] = 4
    assert list(d.items()) == [("b", 2), ("c", 4)]
    assert len(utils.BoundedDict()) == 0


def test_time_ms_and_shortuuid() -> None:
    import time

    assert abs(utils.time_ms() - time.time() * 1000) < 1000
    ids = {utils.shortuuid("req_") for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("req_") and len(i) == 16 for i in ids)


def test_combine_frames_and_audio_byte_stream() -> None:
    frames = [rtc.AudioFrame(bytes(320), 16000, 1, 160) for _ in range(3)]
    combined = utils.combine_frames(frames)
    assert combined.samples_per_channel == 480 and utils.combine_frames(combined) is combined
    stream = utils.AudioByteStream(16000, 1, samples_per_channel=100)
    out = stream.push(np.arange(250, dtype=np.int16).tobytes())
    assert [f.samples_per_channel for f in out] == [100, 100]
    rest = stream.flush()
    assert [f.samples_per_channel for f in rest] == [50]
    assert np.frombuffer(rest[0].data, dtype=np.int16)[0] == 200


# -- tokenize ---------------------------------------------------------------------------


def test_basic_sentence_and_word_tokenizers() -> None:
    sentences = basic.SentenceTokenizer()
    assert sentences.tokenize("Hi there. This is a longer sentence, Dr. Smith said. And another one here!") == [
        "Hi there. This is a longer sentence, Dr. Smith said.",
        "And another one here!",
    ]
    assert basic.WordTokenizer().tokenize("Hello, world! It's 3.14 o'clock-ish.") == [
        "Hello", "world", "Its", "314", "oclockish",
    ]
    assert basic.WordTokenizer(ignore_punctuation=False).tokenize("Hello, world! It's 3.14.") == [
        "Hello,", "world!", "It's", "3.14.",
    ]
    assert basic.WordTokenizer(split_character=True).tokenize("hi 你好") == ["hi", "你", "好"]


def test_hyphenate_word_gives_syllables() -> None:
    assert basic.hyphenate_word("synchronization") == ["syn", "chro", "niza", "tion"]
    assert basic.hyphenate_word("hello") == ["hel", "lo"]
    assert basic.hyphenate_word("a") == ["a"] and basic.hyphenate_word("") == []


async def test_replace_words_on_text_and_on_a_stream() -> None:
    replacements = {"hello": "bye", "new york": "NYC"}
    assert replace_words(text="Hello World, hello world!", replacements=replacements) == "bye World, bye world!"
    assert replace_words(text="othello says hello", replacements=replacements) == "othello says bye"

    async def chunks() -> Any:
        for chunk in ["Visit New Yo", "rk and new ", "york now. hel", "lo there"]:
            yield chunk

    out = [piece async for piece in replace_words(text=chunks(), replacements=replacements)]  # type: ignore[union-attr]
    assert "".join(out) == "Visit NYC and NYC now. bye there"
    assert len(out) > 1  # streamed, not collected first


async def test_word_stream_and_buffered_sentence_stream() -> None:
    words: WordStream = basic.WordTokenizer().stream()
    for chunk in ["Hel", "lo wor", "ld, how are", " you"]:
        words.push_text(chunk)
    words.end_input()
    assert [t.token async for t in words] == ["Hello", "world", "how", "are", "you"]

    stream = BufferedSentenceStream(
        tokenizer=basic.SentenceTokenizer(min_sentence_len=1).tokenize, min_token_len=10, min_ctx_len=5
    )
    stream.push_text("Hi. This is one sentence. And ")
    stream.push_text("another here! Final bit")
    stream.flush()
    stream.push_text("Next segment.")
    stream.end_input()
    tokens = [t async for t in stream]
    assert [t.token for t in tokens] == ["Hi. This is one sentence.", "And another here!", "Final bit", "Next segment."]
    assert len({t.segment_id for t in tokens[:3]}) == 1 and tokens[3].segment_id != tokens[0].segment_id


# -- rooms ------------------------------------------------------------------------------


@pytest.mark.livekit_server
async def test_wait_for_participant_and_track_publication(livekit_server: Any) -> None:
    import uuid

    name = f"utils-{uuid.uuid4().hex[:8]}"
    agent = await connect(livekit_server, name, "agent")
    user_room: rtc.Room | None = None
    try:
        waiting = asyncio.create_task(utils.wait_for_participant(agent, identity="user"))
        publication = asyncio.create_task(
            utils.wait_for_track_publication(agent, identity="user", kind=rtc.TrackKind.KIND_AUDIO)
        )
        user_room = await connect(livekit_server, name, "user")
        participant = await asyncio.wait_for(waiting, 10)
        assert participant.identity == "user"
        user = Participant(user_room)
        await user.publish_microphone()
        published = await asyncio.wait_for(publication, 10)
        assert published.sid == user.mic_sid
        # already there: both return at once
        again = await asyncio.wait_for(utils.wait_for_participant(agent, kind=[participant.kind]), 1)
        assert again.identity == "user"
        assert (await asyncio.wait_for(utils.wait_for_track_publication(agent), 1)).sid == user.mic_sid
    finally:
        if user_room is not None:
            await user_room.disconnect()
        await agent.disconnect()
    with pytest.raises(RuntimeError, match="not connected"):
        await utils.wait_for_participant(agent)
