"""What livekit-server itself recorded about jobs: its "job ended" log lines.

roomd's own log says what roomd decided; the server's record is what an operator's
dashboards and webhooks see, and the two must agree. The server logs one line per job
that ends, with the job id and the final status (``JS_SUCCESS``, ``JS_FAILED``) and, for a
failure, the error (e.g. "agent worker left the room"); its "assigned job to worker" line
names the job's room. This reads those lines from the shared test server's log file
(``livekit_dev_server.log_path``), from where the record was made on.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
from collections.abc import Collection
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class EndedJob:
    job_id: str
    room: str
    status: str  # JS_SUCCESS, JS_FAILED, ...
    error: str


class ServerRecord:
    """The server's "job ended" lines written after this object was made."""

    def __init__(self, log_path: Path) -> None:
        self._path = log_path
        self._offset = log_path.stat().st_size
        self._partial = b""
        self._jobs: list[EndedJob] = []
        self._rooms: dict[str, str] = {}  # job id -> room, from the assignment lines
        self._dropped: set[str] = set()  # rooms whose dispatch no worker took

    def ended(self) -> list[EndedJob]:
        """Every "job ended" line so far (read on from where the last call stopped)."""
        with self._path.open("rb") as log:
            log.seek(self._offset)
            data = self._partial + log.read()
        self._offset += len(data) - len(self._partial)
        *lines, self._partial = data.split(b"\n")
        for raw in lines:
            line = raw.decode(errors="replace")
            assigned, ended = "\tassigned job to worker\t" in line, "\tjob ended\t" in line
            dropped = "\tno worker available to handle job\t" in line
            if not (assigned or ended or dropped) or "{" not in line:
                continue
            try:
                fields = json.loads(line[line.index("{"):])
            except ValueError:
                continue
            job_id = str(fields.get("jobID", ""))
            if dropped:
                self._dropped.add(str(fields.get("room", "")))
                continue
            if assigned:
                self._rooms[job_id] = str(fields.get("room", ""))
                continue
            self._jobs.append(EndedJob(job_id=job_id, room=self._rooms.get(job_id, ""),
                                       status=str(fields.get("status", "")), error=str(fields.get("error", ""))))
        return list(self._jobs)

    def dropped(self) -> set[str]:
        """Rooms whose dispatch the server dropped: no worker took it (every worker full)."""
        self.ended()
        return set(self._dropped)

    def in_rooms(self, rooms: Collection[str]) -> list[EndedJob]:
        wanted = set(rooms)
        return [job for job in self.ended() if job.room in wanted]

    async def wait_for_rooms(self, rooms: Collection[str], timeout: float = 30) -> dict[str, EndedJob]:
        """The server's record of the job in each of ``rooms`` (one job per room), once all ended."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = {job.room: job for job in self.in_rooms(rooms)}
                    if len(found) >= len(set(rooms)):
                        return found
                    await asyncio.sleep(0.1)  # the server writes a file; there is nothing to await
        except TimeoutError:
            missing = sorted(set(rooms) - {job.room for job in self.in_rooms(rooms)})
            raise AssertionError(f"the server recorded no end for the jobs in {missing[:5]} "
                                 f"({len(missing)} of {len(set(rooms))})") from None

    @staticmethod
    def counts(jobs: Collection[EndedJob]) -> dict[str, int]:
        return dict(collections.Counter(job.status for job in jobs))
