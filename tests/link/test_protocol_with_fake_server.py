"""The link against a protocol-level fake server: faults the real server cannot make."""

from __future__ import annotations

import asyncio

import jwt
import msgspec
import pytest
import structlog
from fake_server import FakeAgentServer
from launchers import SteeredLauncher
from livekit.protocol import agent as agent_pb

from roomd.agents.job_request import AcceptArguments, RequestDecision
from roomd.daemon.admission import Admission, Decision
from roomd.daemon.config import LinkConfig
from roomd.daemon.jobs import JobStatus, LaunchError
from roomd.daemon.link import LinkFailed, LinkState, agent_websocket_url

from link_runner import FAST, LinkRunner


@pytest.mark.parametrize(("url", "expected"), [
    ("http://h:7880", "ws://h:7880/agent"),
    ("https://h", "wss://h/agent"),
    ("wss://h/base/", "wss://h/base/agent"),
    ("ws://h/base", "ws://h/base/agent"),
])
def test_agent_url_switches_scheme_and_keeps_the_path(url: str, expected: str) -> None:
    assert agent_websocket_url(url) == expected


async def test_registers_with_agent_grant_and_our_identity(fake_server: FakeAgentServer,
                                                           links: LinkRunner) -> None:
    link = links.start(fake_server.url, agent_name="receptionist")
    conn = await fake_server.connection()
    register = (await conn.next("register")).register
    assert register.agent_name == "receptionist"
    assert register.type == agent_pb.JT_ROOM
    assert register.allowed_permissions.agent and register.allowed_permissions.can_publish
    token = conn.authorization.removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["video"]["agent"] is True
    await link.wait_registered(5)
    assert link.worker_id.startswith("W_")
    status = (await conn.next("update_worker")).update_worker
    assert status.status == agent_pb.WS_AVAILABLE


async def test_job_flows_offer_assignment_running_success(fake_server: FakeAgentServer,
                                                          links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.offer("J1")
    answer = (await conn.next("availability")).availability
    assert (answer.job_id, answer.available, answer.participant_identity) == ("J1", True, "agent-J1")
    await conn.assign("J1")
    assert (await conn.next("update_job")).update_job.status == agent_pb.JS_RUNNING
    handle = launcher.handles["J1"]
    assert handle.launch.url == fake_server.url  # empty assignment url: the configured one
    handle.finish()
    done = (await conn.next("update_job")).update_job
    assert (done.job_id, done.status, done.error) == ("J1", agent_pb.JS_SUCCESS, "")


async def test_failed_job_reports_its_error(fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("J2")
    await conn.next("update_job")
    launcher.handles["J2"].finish(JobStatus.FAILED, "entrypoint raised ValueError: nope")
    done = (await conn.next("update_job")).update_job
    assert (done.status, done.error) == (agent_pb.JS_FAILED, "entrypoint raised ValueError: nope")


async def test_job_that_ends_before_running_is_failed_without_running(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher(auto_run=False)
    links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("J3")
    (await launcher.launched.get()).finish(JobStatus.FAILED, "prewarm crashed")
    update = (await conn.next("update_job")).update_job
    assert (update.status, update.error) == (agent_pb.JS_FAILED, "prewarm crashed")


async def test_launch_error_is_a_failed_status_naming_the_cause(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    class Broken:
        async def launch(self, launch: object) -> object:
            raise LaunchError("plugin 'x' pool is FATAL: prewarm raised")

    links.start(fake_server.url, launcher=Broken())
    conn = await fake_server.connection()
    await conn.dispatch("J4")
    update = (await conn.next("update_job")).update_job
    assert update.status == agent_pb.JS_FAILED
    assert "could not start the job: plugin 'x' pool is FATAL: prewarm raised" == update.error


async def test_stalled_assignment_times_out_and_frees_the_slot(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    admission = Admission(max_jobs=1, load_threshold=1.0, load=lambda: 0.0)
    link = links.start(fake_server.url, admission=admission)
    conn = await fake_server.connection()
    await conn.offer("J5")
    assert (await conn.next("availability")).availability.available
    assert admission.in_use == 1
    update = (await conn.next("update_job", timeout=5)).update_job  # no assignment ever comes
    assert update.status == agent_pb.JS_FAILED and "no JobAssignment for job J5" in update.error
    assert admission.in_use == 0 and link.assignment_timeouts == 1
    assert admission.decisions[Decision.ASSIGNMENT_TIMEOUT] == 1
    await conn.offer("J6")  # the slot is usable again
    assert (await conn.next("availability")).availability.available


async def test_termination_before_assignment_fails_the_job_and_frees_the_slot(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    admission = Admission(max_jobs=1, load_threshold=1.0, load=lambda: 0.0)
    link = links.start(fake_server.url, admission=admission,
                       config=msgspec.structs.replace(FAST, assignment_timeout=30.0))
    conn = await fake_server.connection()
    await conn.offer("W1")
    assert (await conn.next("availability")).availability.available
    await conn.send(agent_pb.ServerMessage(termination=agent_pb.JobTermination(job_id="W1")))
    update = (await conn.next("update_job")).update_job
    assert update.job_id == "W1" and update.status == agent_pb.JS_FAILED
    assert "terminated by the server before its assignment" in update.error
    assert admission.in_use == 0 and await link.wait_idle(5)
    assert admission.decisions[Decision.WITHDRAWN] == 1


async def test_stopping_with_an_assignment_pending_frees_the_slot(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    admission = Admission(max_jobs=1, load_threshold=1.0, load=lambda: 0.0)
    link = links.start(fake_server.url, admission=admission,
                       config=msgspec.structs.replace(FAST, assignment_timeout=30.0))
    conn = await fake_server.connection()
    await conn.offer("W2")
    assert (await conn.next("availability")).availability.available
    assert await link.terminate_jobs("drain timeout", timeout=5)
    update = (await conn.next("update_job")).update_job
    assert update.status == agent_pb.JS_FAILED and "not started: drain timeout" in update.error
    assert admission.in_use == 0


async def test_late_assignment_is_answered_with_failed(fake_server: FakeAgentServer,
                                                       links: LinkRunner) -> None:
    links.start(fake_server.url)
    conn = await fake_server.connection()
    await conn.assign("never-offered")
    update = (await conn.next("update_job")).update_job
    assert update.job_id == "never-offered" and update.status == agent_pb.JS_FAILED


async def test_burst_of_100_offers_never_exceeds_max_jobs(fake_server: FakeAgentServer,
                                                          links: LinkRunner) -> None:
    admission = Admission(max_jobs=10, load_threshold=1.0, load=lambda: 0.0)
    links.start(fake_server.url, admission=admission)
    conn = await fake_server.connection()
    await asyncio.gather(*(conn.offer(f"B{i}") for i in range(100)))
    answers = [(await conn.next("availability")).availability for _ in range(100)]
    accepted = [a.job_id for a in answers if a.available]
    assert len(accepted) == 10
    assert admission.in_use == 10
    assert admission.decisions[Decision.NO_SLOT] == 90


async def test_reported_load_is_slot_use_sent_at_once(fake_server: FakeAgentServer,
                                                     links: LinkRunner) -> None:
    admission = Admission(max_jobs=4, load_threshold=1.0, load=lambda: 0.1)
    link = links.start(fake_server.url, admission=admission, config=msgspec.structs.replace(
        FAST, status_interval=60.0, assignment_timeout=30.0))
    conn = await fake_server.connection()
    assert (await conn.next("update_worker")).update_worker.load == pytest.approx(0.1)  # CPU
    await conn.offer("L1")
    await conn.offer("L2")
    # With a 60 s period, only a change can send these: an offer's reservation is a used slot.
    loads: list[float] = []
    while not loads or loads[-1] < 0.5:
        loads.append(round((await conn.next("update_worker", timeout=5)).update_worker.load, 3))
    assert set(loads) <= {0.25, 0.5}
    assert link.snapshot().load == pytest.approx(0.5)


async def test_refused_offers_are_kept_for_status(fake_server: FakeAgentServer,
                                                 links: LinkRunner) -> None:
    link = links.start(fake_server.url, agent_name="a")
    conn = await fake_server.connection()
    for job_id in ("R1", "R2"):
        await conn.offer(job_id, agent_name="b", room=f"room-{job_id}")
        assert not (await conn.next("availability")).availability.available
    refused = link.snapshot().recent_refusals
    assert [(r.job_id, r.room, r.reason) for r in refused] == [
        ("R1", "room-R1", "wrong_agent"), ("R2", "room-R2", "wrong_agent")]
    assert "job is for agent 'b'" in refused[0].detail


async def test_offer_for_another_agent_is_refused(fake_server: FakeAgentServer,
                                                  links: LinkRunner) -> None:
    admission = Admission(max_jobs=0, load_threshold=1.0, load=lambda: 0.0)
    links.start(fake_server.url, agent_name="a", admission=admission)
    conn = await fake_server.connection()
    await conn.offer("J7", agent_name="b")
    assert not (await conn.next("availability")).availability.available
    assert admission.decisions[Decision.WRONG_AGENT] == 1


async def test_overload_refuses_and_reports_full(fake_server: FakeAgentServer,
                                                 links: LinkRunner) -> None:
    admission = Admission(max_jobs=0, load_threshold=0.5, load=lambda: 0.9)
    links.start(fake_server.url, admission=admission)
    conn = await fake_server.connection()
    assert (await conn.next("update_worker")).update_worker.status == agent_pb.WS_FULL
    await conn.offer("J8")
    assert not (await conn.next("availability")).availability.available
    assert admission.decisions[Decision.OVERLOADED] == 1


async def test_reporting_full_says_why_in_the_log(fake_server: FakeAgentServer,
                                                  links: LinkRunner) -> None:
    load = 0.9
    admission = Admission(max_jobs=0, load_threshold=0.5, load=lambda: load)
    with structlog.testing.capture_logs() as logs:
        link = links.start(fake_server.url, admission=admission)
        conn = await fake_server.connection()
        assert (await conn.next("update_worker")).update_worker.status == agent_pb.WS_FULL
        full = [e for e in logs if e["event"].startswith("reporting full")]
        assert full and full[0]["log_level"] == "warning" and full[0]["reason"] == "overloaded"
        assert "load 0.90 >= load_threshold 0.50" in full[0]["detail"]
        load = 0.1
        admission.reconfigure(max_jobs=0, load_threshold=0.5)  # availability may have changed
        assert (await conn.next("update_worker")).update_worker.status == agent_pb.WS_AVAILABLE
        assert any(e["event"] == "reporting available again" for e in logs)
        assert link.state is LinkState.REGISTERED


async def test_plugin_rejection_and_plugin_error_refuse_the_offer(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    class Picky:
        async def evaluate(self, job: agent_pb.Job) -> RequestDecision:
            if job.id == "boom":
                raise RuntimeError("request_fnc exploded")
            if job.id == "no":
                return RequestDecision(None)
            return RequestDecision(AcceptArguments(identity="custom", name="Ada",
                                                   attributes={"k": "v"}))

    admission = Admission(max_jobs=0, load_threshold=1.0, load=lambda: 0.0)
    links.start(fake_server.url, admission=admission, evaluator=Picky())
    conn = await fake_server.connection()
    for job_id in ("boom", "no", "yes"):
        await conn.offer(job_id)
    answers = {a.job_id: a for a in [(await conn.next("availability")).availability
                                     for _ in range(3)]}
    assert not answers["boom"].available and not answers["no"].available
    assert answers["yes"].participant_identity == "custom"
    assert answers["yes"].participant_name == "Ada"
    assert dict(answers["yes"].participant_attributes) == {"k": "v"}
    assert admission.decisions[Decision.PLUGIN_ERROR] == 1
    assert admission.decisions[Decision.REJECTED_BY_PLUGIN] == 1
    assert admission.in_use == 1


async def test_server_termination_ends_the_job(fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("J9")
    await conn.next("update_job")
    await conn.send(agent_pb.ServerMessage(termination=agent_pb.JobTermination(job_id="J9")))
    update = (await conn.next("update_job")).update_job
    assert update.status == agent_pb.JS_SUCCESS
    assert launcher.handles["J9"].terminated == ["terminated by the server"]


async def test_socket_dropped_mid_job_reconnects_and_announces_the_running_job(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    link = links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("M1")
    await conn.next("update_job")
    await fake_server.drop_all()
    second = await fake_server.connection()
    assert list((await second.next("migrate_job")).migrate_job.job_ids) == ["M1"]
    assert link.reconnects == 1
    launcher.handles["M1"].finish()
    update = (await second.next("update_job")).update_job
    assert (update.job_id, update.status) == ("M1", agent_pb.JS_SUCCESS)


async def test_status_of_a_job_that_ended_while_disconnected_is_sent_after_reconnect(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    link = links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("M2")
    await conn.next("update_job")
    fake_server.refuse_connections = True
    await fake_server.drop_all()
    await link.wait_for_state(LinkState.RECONNECTING, timeout=5)
    launcher.handles["M2"].finish(JobStatus.FAILED, "ended while the server was away")
    fake_server.refuse_connections = False
    second = await fake_server.connection()
    update = (await second.next("update_job")).update_job
    assert (update.job_id, update.status, update.error) == (
        "M2", agent_pb.JS_FAILED, "ended while the server was away")


async def test_server_restart_with_jobs_running(fake_server: FakeAgentServer,
                                                links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    link = links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    for job_id in ("R1", "R2"):
        await conn.dispatch(job_id)
        await conn.next("update_job")  # running (read now: the next dispatch skips other kinds)
    fake_server.refuse_connections = True
    await fake_server.drop_all()
    await link.wait_for_state(LinkState.RECONNECTING, timeout=5)
    fake_server.refuse_connections = False
    second = await fake_server.connection()
    assert sorted((await second.next("migrate_job")).migrate_job.job_ids) == ["R1", "R2"]
    assert link.jobs.keys() == {"R1", "R2"}
    launcher.handles["R1"].finish()
    assert (await second.next("update_job")).update_job.job_id == "R1"


async def test_garbage_frame_is_a_protocol_error_and_the_link_reconnects(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    link = links.start(fake_server.url)
    conn = await fake_server.connection()
    await conn.ws.send_bytes(b"\x0a\xff\xff\xff garbage")
    second = await fake_server.connection()
    assert (await second.next("update_worker")).update_worker.status == agent_pb.WS_AVAILABLE
    assert link.state is LinkState.REGISTERED and link.reconnects == 1


@pytest.mark.parametrize(("reply", "message"), [
    ("wrong_first", "expected RegisterWorkerResponse first, got pong"),
    ("garbage", "undecodable ServerMessage"),
    ("close", "server closed the connection before answering registration"),
])
async def test_bad_registration_answer_is_named_and_exhausts_retries(
        fake_server: FakeAgentServer, links: LinkRunner, reply: str, message: str) -> None:
    fake_server.register_reply = reply
    link = links.start(fake_server.url, config=LinkConfig(
        max_retry=2, reconnect_backoff_max=0.05, assignment_timeout=1.0))
    _, task = links.tasks[-1]
    with pytest.raises(LinkFailed, match=message) as caught:
        await asyncio.wait_for(task, 10)
    assert "after 3 attempts" in str(caught.value)
    assert link.state is LinkState.FAILED


async def test_unreachable_server_fails_after_max_retry(links: LinkRunner) -> None:
    link = links.start("ws://127.0.0.1:9", config=LinkConfig(max_retry=1, reconnect_backoff_max=0.05))
    _, task = links.tasks[-1]
    # max_retry counts retries: the first attempt and one retry, and the message says so.
    with pytest.raises(LinkFailed, match=r"after 2 attempts in a row \(the first and "
                                         r"link.max_retry = 1 retries\): ClientConnectorError"):
        await asyncio.wait_for(task, 10)
    assert link.state is LinkState.FAILED


async def test_drain_reports_full_refuses_offers_and_waits_for_jobs(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    link = links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("D1")
    await conn.next("update_job")
    link.drain()
    while (await conn.next("update_worker")).update_worker.status != agent_pb.WS_FULL:
        pass
    await conn.offer("D2")
    assert not (await conn.next("availability")).availability.available
    assert not await link.wait_idle(0.05)
    launcher.handles["D1"].finish()
    assert await link.wait_idle(5)


async def test_terminate_jobs_ends_running_jobs_and_sends_their_status(
        fake_server: FakeAgentServer, links: LinkRunner) -> None:
    launcher = SteeredLauncher()
    link = links.start(fake_server.url, launcher=launcher)
    conn = await fake_server.connection()
    await conn.dispatch("T1")
    await conn.next("update_job")
    assert await link.terminate_jobs("daemon stopping", timeout=5)
    assert launcher.handles["T1"].terminated == ["daemon stopping"]
    # The job did not end on its own: roomd cut it short, so the server hears FAILED.
    update = (await conn.next("update_job")).update_job
    assert update.status == agent_pb.JS_FAILED and update.error == "ended by roomd: daemon stopping"


async def test_ping_measures_round_trip(fake_server: FakeAgentServer, links: LinkRunner) -> None:
    link = links.start(fake_server.url, config=FAST)
    conn = await fake_server.connection()
    await conn.next("ping")
    async with asyncio.timeout(5):
        while link.rtt is None:
            await conn.next("ping")
    assert 0 <= link.rtt < 5
