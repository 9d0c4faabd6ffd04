"""Launchers for link tests: jobs whose life the test steers, and jobs that join a real room."""

from __future__ import annotations

import asyncio

from livekit import rtc

from roomd.daemon.jobs import JobEndedEarly, JobLaunch, JobOutcome, JobStatus


class SteeredHandle:
    def __init__(self, launch: JobLaunch) -> None:
        self.launch = launch
        self.running = asyncio.Event()
        self.ended: asyncio.Future[JobOutcome] = asyncio.get_running_loop().create_future()
        self.terminated: list[str] = []

    @property
    def job_id(self) -> str:
        return self.launch.job.id

    def finish(self, status: JobStatus = JobStatus.SUCCESS, error: str = "") -> None:
        if not self.ended.done():
            self.ended.set_result(JobOutcome(status, error))

    async def wait_running(self) -> None:
        done, _ = await asyncio.wait([asyncio.ensure_future(self.running.wait()), self.ended],
                                     return_when=asyncio.FIRST_COMPLETED)
        if not self.running.is_set():
            raise JobEndedEarly(self.ended.result())

    async def wait_ended(self) -> JobOutcome:
        return await asyncio.shield(self.ended)

    def status_reported(self) -> None:
        pass

    async def terminate(self, reason: str) -> None:
        self.terminated.append(reason)
        self.finish(JobStatus.SUCCESS)


class SteeredLauncher:
    """Every launch returns a handle the test controls; ``auto_run`` marks it running."""

    def __init__(self, *, auto_run: bool = True) -> None:
        self.auto_run = auto_run
        self.handles: dict[str, SteeredHandle] = {}
        self.launched: asyncio.Queue[SteeredHandle] = asyncio.Queue()

    async def launch(self, launch: JobLaunch) -> SteeredHandle:
        handle = SteeredHandle(launch)
        if self.auto_run:
            handle.running.set()
        self.handles[handle.job_id] = handle
        self.launched.put_nowait(handle)
        return handle


class RoomJobHandle:
    """Runs the job in this process: joins the room with the assignment's token and stays
    until terminated or every other participant left."""

    def __init__(self, launch: JobLaunch) -> None:
        self.launch = launch
        self.room = rtc.Room()
        self._running = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def job_id(self) -> str:
        return self.launch.job.id

    async def _run(self) -> JobOutcome:
        try:
            self.room.on("disconnected", lambda *_: self._stop.set())
            await self.room.connect(self.launch.url, self.launch.token)
            self._running.set()
            await self._stop.wait()
            return JobOutcome(JobStatus.SUCCESS)
        except Exception as exc:
            return JobOutcome(JobStatus.FAILED, str(exc))
        finally:
            await self.room.disconnect()

    async def wait_running(self) -> None:
        await asyncio.wait([asyncio.ensure_future(self._running.wait()), self._task],
                           return_when=asyncio.FIRST_COMPLETED)
        if not self._running.is_set():
            raise JobEndedEarly(self._task.result())

    async def wait_ended(self) -> JobOutcome:
        return await asyncio.shield(self._task)

    def status_reported(self) -> None:
        pass

    async def terminate(self, reason: str) -> None:
        self._stop.set()
        await asyncio.shield(self._task)


class RoomLauncher:
    def __init__(self) -> None:
        self.handles: asyncio.Queue[RoomJobHandle] = asyncio.Queue()

    async def launch(self, launch: JobLaunch) -> RoomJobHandle:
        handle = RoomJobHandle(launch)
        self.handles.put_nowait(handle)
        return handle
