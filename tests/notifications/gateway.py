"""A local HTTP server on 127.0.0.1 that plays an SMS or chat gateway,
failures included: each address gets its scripted answers in turn."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Call:
    address: str
    idempotency_key: str
    at: float


@dataclass
class FakeGateway:
    # Per address, the answers to give in turn: "200", "429", "500", "400",
    # "timeout"; the last one repeats.
    script: dict[str, list[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _answers: list[str] = field(default_factory=list)
    _server: asyncio.Server | None = None
    port: int = 0
    # Seconds a "timeout" answer hangs before giving up.
    hang: float = 2.0

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}/send"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def calls_to(self, address: str) -> list[Call]:
        return [c for c in self.calls if c.address == address]

    def accepted(self) -> dict[str, int]:
        """How many times each idempotency key was answered 200."""
        counts: dict[str, int] = defaultdict(int)
        for call, answer in zip(self.calls, self._answers, strict=True):
            if answer == "200":
                counts[call.idempotency_key] += 1
        return dict(counts)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        payload = json.loads(body)
        address = payload["address"]
        plan = self.script.get(address, ["200"])
        seen = len(self.calls_to(address))
        answer = plan[min(seen, len(plan) - 1)]
        self.calls.append(
            Call(address, headers.get("idempotency-key", ""), time.monotonic())
        )
        self._answers.append(answer)
        if answer == "timeout":
            await asyncio.sleep(self.hang)
            writer.close()
            return
        extra = "Retry-After: 1\r\n" if answer == "429" else ""
        reply = b'{"status": "accepted"}'
        writer.write(
            f"HTTP/1.1 {answer} X\r\nContent-Length: {len(reply)}\r\n{extra}"
            "Connection: close\r\n\r\n".encode()
            + reply
        )
        await writer.drain()
        writer.close()
