"""Every state machine of the daemon is a table, checked in one place: each legal change is
accepted, each illegal one raises, and no machine writes its state outside its transition."""

from __future__ import annotations

import ast
import enum
import itertools
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol import agent as agent_pb

import roomd.daemon
from roomd.daemon.admission import Admission, Reservation
from roomd.daemon.jobs import JOB_TRANSITIONS, Job, JobOutcome, JobState, JobStatus
from roomd.daemon.link import LINK_TRANSITIONS, LinkState
from roomd.daemon.plugin_runtime import PLUGIN_TRANSITIONS, PluginRecord, PluginState
from roomd.daemon.plugins.discovery import PluginSpec
from roomd.daemon.pool.states import CHILD_TRANSITIONS, POOL_TRANSITIONS, ChildState, PoolState
from roomd.daemon.supervisor import SUPERVISOR_TRANSITIONS, SupervisorState
from roomd.daemon.transitions import IllegalTransition, TransitionCounter, allowed

TABLES: dict[str, tuple[Mapping[Any, Set[Any]], type[enum.Enum]]] = {
    "pool": (POOL_TRANSITIONS, PoolState),
    "child": (CHILD_TRANSITIONS, ChildState),
    "link": (LINK_TRANSITIONS, LinkState),
    "job": (JOB_TRANSITIONS, JobState),
    "plugin": (PLUGIN_TRANSITIONS, PluginState),
    "supervisor": (SUPERVISOR_TRANSITIONS, SupervisorState),
}

CASES = [(name, old, new) for name, (_, states) in TABLES.items()
         for old, new in itertools.product(states, repeat=2)]


@pytest.mark.parametrize("name", TABLES)
def test_every_state_has_a_row(name: str) -> None:
    table, states = TABLES[name]
    assert set(table) == set(states)
    assert all(new in states for targets in table.values() for new in targets)


@pytest.mark.parametrize(("name", "old", "new"), CASES, ids=lambda v: getattr(v, "name", v))
def test_each_change_is_accepted_or_raises_as_the_table_says(name: str, old: enum.Enum, new: enum.Enum) -> None:
    table, _ = TABLES[name]
    if old is new:
        assert allowed(table, old, new, name) is False  # staying is no change
    elif new in table[old]:
        assert allowed(table, old, new, name) is True
    else:
        with pytest.raises(IllegalTransition, match=f"{old.name} -> {new.name}"):
            allowed(table, old, new, name)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(PluginState, repeat=2)))
def test_a_plugin_record_follows_its_table(old: PluginState, new: PluginState) -> None:
    record = PluginRecord(PluginSpec("p", "m:a", "d", "1"), state=old)
    if old is new or new in PLUGIN_TRANSITIONS[old]:
        record.transition(new, "cause" if new is PluginState.FAILED else "")
        assert record.state is new
    else:
        with pytest.raises(IllegalTransition):
            record.transition(new)
        assert record.state is old


def test_terminal_states_have_no_way_out() -> None:
    for table, state in ((POOL_TRANSITIONS, PoolState.CLOSED), (CHILD_TRANSITIONS, ChildState.EXITED),
                         (LINK_TRANSITIONS, LinkState.CLOSED), (JOB_TRANSITIONS, JobState.ENDED),
                         (SUPERVISOR_TRANSITIONS, SupervisorState.STOPPED)):
        assert not table[state]


def test_no_machine_writes_its_state_outside_its_transition() -> None:
    root = Path(roomd.daemon.__file__).resolve().parent
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if function.name in ("__init__", "_transition", "transition"):
                continue
            for node in ast.walk(function):
                targets = node.targets if isinstance(node, ast.Assign) else \
                    [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr in ("_state", "state") \
                            and isinstance(target.value, ast.Name) and target.value.id == "self":
                        found.append(f"{path.relative_to(root)}:{node.lineno} in {function.name}")
    assert not found, "state written outside a transition:\n" + "\n".join(found)


def test_a_plugin_record_counts_each_change_it_makes() -> None:
    counter = TransitionCounter()
    record = PluginRecord(PluginSpec("p", "m:a", "d", "1"), transitions=counter)
    record.transition(PluginState.SERVING)
    record.transition(PluginState.SERVING)  # staying is no change
    record.transition(PluginState.FAILED, "cause")
    with pytest.raises(IllegalTransition):
        record.transition(PluginState.SERVING)  # refused: not counted
    assert counter.counts() == {("plugin", "starting", "serving"): 1,
                                ("plugin", "serving", "failed"): 1}


async def test_a_job_counts_its_way_from_offer_to_end() -> None:
    counter = TransitionCounter()
    reservation = Admission(max_jobs=1, load_threshold=1.0, load=lambda: 0.0).try_reserve()
    assert isinstance(reservation, Reservation)
    record = Job(agent_pb.Job(id="AJ_1"), reservation, offered_at=0.0, transitions=counter)
    record.transition(JobState.LAUNCHING)
    record.transition(JobState.RUNNING)
    record.end(JobOutcome(JobStatus.SUCCESS))
    record.end(JobOutcome(JobStatus.FAILED, "again"))  # the first outcome stands
    assert record.outcome == JobOutcome(JobStatus.SUCCESS) and not reservation.held
    assert counter.counts() == {("job", "offered", "launching"): 1,
                                ("job", "launching", "running"): 1,
                                ("job", "running", "ended"): 1}
