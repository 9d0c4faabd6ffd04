"""The instrument's floor for benchmarks/dispatch.py: a worker that does nothing but answer.

One process, asyncio on uvloop and aiohttp as roomd's supervisor uses: it registers, accepts
every offer at once, and on an assignment stamps "entry" and reports RUNNING, then SUCCESS,
without starting a process or joining the room. What the benchmark measures for it is what
the relay, the server and one wake-up of a Python process cost on this machine: no worker
that runs a job in another process can be faster.

    python floor_dispatch_worker.py   (LIVEKIT_URL/KEY/SECRET, BENCH_IDLE from the environment)
"""

from __future__ import annotations

import os

import aiohttp
import uvloop
from livekit import api
from livekit.protocol import agent as agent_pb
from stamps import stamp

AGENT_NAME = "dispatch-bench-floor"


async def serve() -> None:
    url = os.environ["LIVEKIT_URL"].rstrip("/")
    token = (
        api.AccessToken(os.environ["LIVEKIT_API_KEY"], os.environ["LIVEKIT_API_SECRET"])
        .with_grants(api.VideoGrants(agent=True))
        .to_jwt()
    )
    async with aiohttp.ClientSession() as http, http.ws_connect(
        f"{url}/agent", headers={"Authorization": f"Bearer {token}"}
    ) as ws:

        async def send(message: agent_pb.WorkerMessage) -> None:
            await ws.send_bytes(message.SerializeToString())

        await send(agent_pb.WorkerMessage(register=agent_pb.RegisterWorkerRequest(
            type=agent_pb.JT_ROOM, agent_name=AGENT_NAME)))
        for _ in range(int(os.environ.get("BENCH_IDLE", "2"))):
            stamp("prewarmed")  # the benchmark waits for its idle count before each job
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.BINARY:
                return
            message = agent_pb.ServerMessage()
            message.ParseFromString(frame.data)
            kind = message.WhichOneof("message")
            if kind == "availability":
                await send(agent_pb.WorkerMessage(availability=agent_pb.AvailabilityResponse(
                    job_id=message.availability.job.id, available=True)))
            elif kind == "assignment":
                job_id = message.assignment.job.id
                stamp("entry", job_id=job_id)
                for status in (agent_pb.JS_RUNNING, agent_pb.JS_SUCCESS):
                    await send(agent_pb.WorkerMessage(update_job=agent_pb.UpdateJobStatus(
                        job_id=job_id, status=status)))
                stamp("prewarmed")  # back at its idle count


if __name__ == "__main__":
    uvloop.run(serve())
