"""Launchers for link tests: jobs whose life the test steers, and jobs that join a real room."""

from __future__ import annotations

import asyncio

from livekit import rtc

from roomd.daemon.jobs import Job, JobLaunch, JobOutcome, JobStatus


class SteeredRunner:
    """Runs nothing: the test says how the job ends (``finish``)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.terminated: list[str] = []

    @property
    def launch(self) -> JobLaunch:
        assert self.job.launch is not None
        return self.job.launch

    def finish(self, status: JobStatus = JobStatus.SUCCESS, error: str = "") -> None:
        self.job.run_ended(JobOutcome(status, error))

    async def stop(self, reason: str) -> None:
        self.terminated.append(reason)
        self.finish(JobStatus.SUCCESS)

    def status_reported(self, job_id: str) -> None:
        pass


class SteeredLauncher:
    """Every launch gets a runner the test controls; ``auto_run`` marks the job running."""

    def __init__(self, *, auto_run: bool = True) -> None:
        self.auto_run = auto_run
        self.handles: dict[str, SteeredRunner] = {}
        self.launched: asyncio.Queue[SteeredRunner] = asyncio.Queue()

    async def launch(self, job: Job) -> None:
        runner = job.runner = SteeredRunner(job)
        if self.auto_run:
            job.entrypoint_started()
        self.handles[job.id] = runner
        self.launched.put_nowait(runner)


class RoomRunner:
    """Runs the job in this process: joins the room with the assignment's token and stays
    until stopped or every other participant left."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.room = rtc.Room()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def launch(self) -> JobLaunch:
        assert self.job.launch is not None
        return self.job.launch

    async def _run(self) -> None:
        try:
            self.room.on("disconnected", lambda *_: self._stop.set())
            await self.room.connect(self.launch.url, self.launch.token)
            self.job.entrypoint_started()
            await self._stop.wait()
            outcome = JobOutcome(JobStatus.SUCCESS)
        except Exception as exc:
            outcome = JobOutcome(JobStatus.FAILED, str(exc))
        finally:
            await self.room.disconnect()
        self.job.run_ended(outcome)

    async def stop(self, reason: str) -> None:
        self._stop.set()
        await asyncio.shield(self._task)

    def status_reported(self, job_id: str) -> None:
        pass


class RoomLauncher:
    def __init__(self) -> None:
        self.handles: asyncio.Queue[RoomRunner] = asyncio.Queue()

    async def launch(self, job: Job) -> None:
        runner = job.runner = RoomRunner(job)
        self.handles.put_nowait(runner)
