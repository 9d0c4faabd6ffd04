"""A plugin's own limits sit inside the daemon's budget."""

from __future__ import annotations

import math

from roomd.daemon.admission import Admission, Decision, Refusal, Reservation


def daemon(max_jobs: int = 0, load: float = 0.0, threshold: float = 0.7) -> Admission:
    return Admission(max_jobs=max_jobs, load_threshold=threshold, load=lambda: load)


def plugin(parent: Admission, max_jobs: int = 0, threshold: float = math.inf) -> Admission:
    return Admission(max_jobs=max_jobs, load_threshold=threshold, load=parent.load, parent=parent)


def test_a_plugin_cap_refuses_while_the_daemon_has_room() -> None:
    shared = daemon(max_jobs=10)
    capped, other = plugin(shared, max_jobs=1), plugin(shared)
    first = capped.try_reserve()
    assert isinstance(first, Reservation)
    refusal = capped.try_reserve()
    assert isinstance(refusal, Refusal) and refusal.decision is Decision.NO_SLOT
    assert "max_jobs=1" in refusal.detail
    assert isinstance(other.try_reserve(), Reservation)
    assert shared.in_use == 2 and capped.in_use == 1


def test_the_daemon_budget_is_shared_by_every_plugin() -> None:
    shared = daemon(max_jobs=2)
    a, b = plugin(shared), plugin(shared)
    slots = [a.try_reserve(), b.try_reserve()]
    assert all(isinstance(s, Reservation) for s in slots)
    refusal = a.try_reserve()
    assert isinstance(refusal, Refusal) and "max_jobs=2" in refusal.detail
    slots[1].release()
    slots[1].release()  # idempotent: every exit path may release
    assert shared.in_use == 1 and b.in_use == 0
    assert isinstance(a.try_reserve(), Reservation)


def test_a_plugin_threshold_below_the_daemon_one_refuses_first() -> None:
    shared = daemon(load=0.5, threshold=0.9)
    picky = plugin(shared, threshold=0.4)
    refusal = picky.try_reserve()
    assert isinstance(refusal, Refusal) and refusal.decision is Decision.OVERLOADED
    assert isinstance(plugin(shared).try_reserve(), Reservation)


def test_daemon_draining_reaches_every_plugin_and_its_listeners() -> None:
    shared = daemon()
    child = plugin(shared)
    heard: list[bool] = []
    child.add_listener(lambda: heard.append(child.is_full()))
    shared.start_draining()
    assert heard == [True]
    refusal = child.try_reserve()
    assert isinstance(refusal, Refusal) and refusal.decision is Decision.DRAINING


def test_decisions_are_counted_for_the_plugin_and_the_daemon() -> None:
    shared = daemon()
    child = plugin(shared)
    child.count(Decision.ACCEPTED)
    assert child.decisions[Decision.ACCEPTED] == 1 and shared.decisions[Decision.ACCEPTED] == 1


def test_plugin_limits_prefer_the_operator_then_the_plugin_and_dev_ignores_load() -> None:
    from roomd.daemon.config import load_config
    from roomd.daemon.plugins.limits import plugin_limits
    from roomd.ipc import PluginDescription

    asks = PluginDescription(agent_name="a", worker_type="room",
                             overrides={"max_jobs": 3, "load_threshold": 0.5})
    silent = PluginDescription(agent_name="b", worker_type="room")
    config = load_config(None, overrides={"plugins.options": {"a": {"max_jobs": 7}},
                                          "livekit.url": "ws://127.0.0.1:1",
                                          "livekit.api_key": "k", "livekit.api_secret": "s"})
    assert plugin_limits(config, "a", asks) == (7, 0.5)
    assert plugin_limits(config, "b", silent) == (0, math.inf)
    dev = load_config(None, overrides={"daemon.dev": True})
    assert plugin_limits(dev, "a", asks) == (3, math.inf)


def test_slot_use_counts_reserved_slots_and_takes_the_fullest_level() -> None:
    shared = daemon(max_jobs=4)
    capped, unlimited = plugin(shared, max_jobs=2), plugin(shared)
    assert capped.slot_use() == 0.0 and unlimited.slot_use() == 0.0
    held = capped.try_reserve()  # a reservation counts before its job runs
    assert isinstance(held, Reservation)
    assert capped.slot_use() == 0.5  # its own 1 of 2 is fuller than the daemon's 1 of 4
    assert unlimited.slot_use() == 0.25  # no limit of its own: the daemon's budget
    held.release()
    assert capped.slot_use() == 0.0
    assert daemon().slot_use() == 0.0  # max_jobs 0: no count limit, no slot use
