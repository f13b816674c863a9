"""The bare parts every scenario compares itself with, and how to load them.

A figure on its own says little on a shared, noisy machine; a figure next to
the same measurement of a bare part, taken in the same run, says how much
our code costs. These helpers measure the bare parts so that any scenario can
put its own baseline beside it, with its own payload and concurrency:

- `closed_loop(call, in_flight, seconds)` keeps `in_flight` calls of `call`
  going for `seconds` and returns a `Load` (completed calls, elapsed time,
  every call's latency). Scenarios load their own RPCs with it too.
- `echo_server()` starts a bare grpc.aio echo server in a process of its own
  (bench/echo_server.py), so client and server never share an event loop;
  `grpc_echo_baseline(payload_size, in_flight, seconds, address=...)` loads
  it with unary calls of `payload_size` bytes.
- `asyncpg_select_baseline(pool, in_flight, seconds)` runs primary-key
  selects of one row from a table of its own (schema `bench`).
- `bare_workflows(client)` runs a worker tuned as ../shared/BASELINES.md
  advises (sandbox off, 400 workflow-task slots, 20 + 20 pollers) for a bare
  workflow of N no-op activities; its `measure(activities, in_flight,
  seconds)` reports workflows/s and start → first activity latencies.
  `bare_workflow_baseline(client, ...)` is the one-shot form, and
  `tuned_worker(...)` builds a worker of your own workflows with the same
  tuning, so a scenario and its baseline run on equal terms.
"""

import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from bench.echo_server import METHOD as ECHO_METHOD
from services.common.config import ROOT

# Calls per connection before measuring: connects, warms caches and pools.
WARMUP_CALLS = 20


@dataclass
class Load:
    """What a closed loop of calls did: how many, in how long, how fast each."""

    calls: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds if self.seconds else 0.0

    def ms(self, percent: float) -> float:
        """The latency at `percent` (50, 99, …), in milliseconds."""
        return percentile(self.latencies, percent) * 1000


def percentile(values: Sequence[float], percent: float) -> float:
    """The value below which `percent` of values lie, interpolated linearly."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


async def closed_loop(
    call: Callable[[], Awaitable[object]], in_flight: int, seconds: float
) -> Load:
    """Keeps `in_flight` calls going for `seconds`, then lets the last ones end.

    Each call's latency is its duration, unless it returns a float: then that
    is its latency in seconds (a workflow's start → first activity, say). The
    rate counts the drain at the end, so stragglers are not hidden.
    """
    latencies: list[float] = []
    start = time.monotonic()
    deadline = start + seconds

    async def caller() -> None:
        while time.monotonic() < deadline:
            began = time.monotonic()
            result = await call()
            took = time.monotonic() - began
            latencies.append(result if isinstance(result, float) else took)

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return Load(len(latencies), time.monotonic() - start, latencies)


# --- gRPC ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    """A bare echo server in a process of its own; yields its address."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.echo_server",
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        port = (await process.stdout.readline()).decode().strip()
        if not port:
            raise RuntimeError("the echo server did not start")
        yield f"127.0.0.1:{port}"
    finally:
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def grpc_echo_baseline(
    payload_size: int, in_flight: int, seconds: float, *, address: str | None = None
) -> Load:
    """Unary echo calls of payload_size bytes against a bare grpc.aio server.

    Pass the address of an `echo_server()` to reuse one across repeats;
    without it a server is started (about a second) and stopped for this call.
    """
    if address is None:
        async with echo_server() as started:
            return await grpc_echo_baseline(
                payload_size, in_flight, seconds, address=started
            )
    payload = random.randbytes(payload_size)
    async with grpc.aio.insecure_channel(address) as channel:
        echo: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]
        echo = channel.unary_unary(ECHO_METHOD)
        for _ in range(WARMUP_CALLS):
            await echo(payload)
        return await closed_loop(lambda: echo(payload), in_flight, seconds)


# --- PostgreSQL ---------------------------------------------------------------

SELECT_ROWS = 10_000


async def prepare_select_table(pool: asyncpg.Pool) -> None:
    """A table of SELECT_ROWS short rows in schema `bench`, made once."""
    async with pool.acquire() as conn:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench.rows"
            " (id integer PRIMARY KEY, value text NOT NULL)"
        )
        await conn.execute(
            "INSERT INTO bench.rows"
            " SELECT i, md5(i::text) FROM generate_series(1, $1) AS i"
            " ON CONFLICT (id) DO NOTHING",
            SELECT_ROWS,
        )


async def asyncpg_select_baseline(
    pool: asyncpg.Pool, in_flight: int, seconds: float
) -> Load:
    """Primary-key selects of one random row; the pool must hold in_flight."""
    await prepare_select_table(pool)

    async def select() -> object:
        key = random.randint(1, SELECT_ROWS)
        return await pool.fetchrow(
            "SELECT id, value FROM bench.rows WHERE id = $1", key
        )

    for _ in range(WARMUP_CALLS):
        await select()
    return await closed_loop(select, in_flight, seconds)


# --- Temporal -----------------------------------------------------------------


def tuned_worker(
    client: Client,
    task_queue: str,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
) -> Worker:
    """A worker tuned as BASELINES.md advises: brand-new workflows don't starve.

    With the SDK's default pollers most workflow-task pollers serve sticky
    queues, and new workflows wait seconds for their first task under load.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activities,
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_workflow_tasks=400,
        max_concurrent_workflow_task_polls=20,
        max_concurrent_activity_task_polls=20,
    )


@dataclass
class BareInput:
    key: str
    activities: int


@dataclass
class NoopInput:
    key: str
    step: int


class NoopActivities:
    """No-op activities that note when each workflow's first one started."""

    def __init__(self) -> None:
        self.first_started: dict[str, float] = {}

    @activity.defn(name="bench_noop")
    async def noop(self, data: NoopInput) -> None:
        if data.step == 0:
            self.first_started[data.key] = time.monotonic()


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    """N no-op activities, one after another: Temporal's cost and nothing else."""

    @workflow.run
    async def run(self, data: BareInput) -> None:
        for step in range(data.activities):
            await workflow.execute_activity_method(
                NoopActivities.noop,
                NoopInput(key=data.key, step=step),
                start_to_close_timeout=timedelta(seconds=30),
            )


class BareWorkflows:
    """Starts bare workflows on a tuned worker of their own task queue."""

    def __init__(self, client: Client, task_queue: str, noop: NoopActivities) -> None:
        self._client = client
        self._task_queue = task_queue
        self._noop = noop

    async def run_one(self, activities: int) -> float:
        """Runs one workflow; returns its start → first activity, in seconds."""
        key = uuid.uuid4().hex
        began = time.monotonic()
        await self._client.execute_workflow(
            BareWorkflow.run,
            BareInput(key=key, activities=activities),
            id=f"bench-bare-{key}",
            task_queue=self._task_queue,
        )
        return self._noop.first_started.pop(key) - began

    async def measure(self, activities: int, in_flight: int, seconds: float) -> Load:
        """Workflows/s with in_flight running, latencies start → first activity."""
        return await closed_loop(lambda: self.run_one(activities), in_flight, seconds)


@contextlib.asynccontextmanager
async def bare_workflows(client: Client) -> AsyncIterator[BareWorkflows]:
    """A tuned worker for bare workflows, polling a task queue of its own."""
    task_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    noop = NoopActivities()
    worker = tuned_worker(client, task_queue, [BareWorkflow], [noop.noop])
    async with worker:
        runner = BareWorkflows(client, task_queue, noop)
        for _ in range(3):
            await runner.run_one(1)
        yield runner


async def bare_workflow_baseline(
    client: Client, activities: int = 3, in_flight: int = 50, seconds: float = 5.0
) -> Load:
    """One measurement of bare workflows on a worker started for it."""
    async with bare_workflows(client) as runner:
        return await runner.measure(activities, in_flight, seconds)
