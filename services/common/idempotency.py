"""The request_id store: a retried mutation returns its first answer.

The key is claimed, the change made and the answer stored in one
transaction. A concurrent retry blocks on the claimed key until the first
commits, then reads its answer; if the first fails, nothing was stored and the
retry acts afresh. Errors are never stored, so a rejected request changes
nothing and can be corrected and sent again.
"""

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from services.common.db import Connection
from services.common.errors import InvalidArgument
from services.common.identity import Caller

ResponseT = TypeVar("ResponseT", bound=Message)

# Kept long enough for a workflow activity to retry across a long outage.
RETENTION = timedelta(days=7)


async def run_once(
    pool: asyncpg.Pool,
    *,
    caller: Caller,
    method: str,
    request: Message,
    response_type: type[ResponseT],
    action: Callable[[Connection], Awaitable[ResponseT]],
) -> ResponseT:
    """Runs action in a transaction at most once per (caller, method, request_id)."""
    request_id: str = getattr(request, "request_id", "")
    async with pool.acquire() as conn, conn.transaction():
        if not request_id:
            return await action(conn)
        digest = _fingerprint(request)
        claimed = await conn.fetchval(
            "INSERT INTO idempotency_keys (caller, method, request_id, request_hash)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
            caller.subject,
            method,
            request_id,
            digest,
        )
        if not claimed:
            return await _first_answer(
                conn, caller, method, request_id, digest, response_type
            )
        response = await action(conn)
        await conn.execute(
            "UPDATE idempotency_keys SET response = $4"
            " WHERE caller = $1 AND method = $2 AND request_id = $3",
            caller.subject,
            method,
            request_id,
            response.SerializeToString(deterministic=True),
        )
        return response


async def _first_answer(
    conn: Connection,
    caller: Caller,
    method: str,
    request_id: str,
    digest: bytes,
    response_type: type[ResponseT],
) -> ResponseT:
    row = await conn.fetchrow(
        "SELECT request_hash, response FROM idempotency_keys"
        " WHERE caller = $1 AND method = $2 AND request_id = $3",
        caller.subject,
        method,
        request_id,
    )
    if row is None or row["request_hash"] != digest:
        raise InvalidArgument.field(
            "request_id", "was already used for a different request"
        )
    return response_type.FromString(row["response"])


async def forget_old_keys(pool: asyncpg.Pool) -> int:
    """Deletes keys past their retention; returns how many."""
    status: str = await pool.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval",
        RETENTION,
    )
    return int(status.split()[-1])


def _fingerprint(request: Message) -> bytes:
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()


# For actions that must not hold a transaction open while they run, such as
# a workflow Update whose handler writes through another RPC of the same
# service: look the answer up first, act, then keep the answer. Concurrent
# retries may both act, so the action must be idempotent itself (an Update
# id derived from the request_id is).


async def recorded_answer(
    pool: asyncpg.Pool,
    *,
    caller: Caller,
    method: str,
    request: Message,
    response_type: type[ResponseT],
) -> ResponseT | None:
    """The answer kept for this request_id, or None when there is none yet."""
    request_id: str = getattr(request, "request_id", "")
    if not request_id:
        return None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT request_hash, response FROM idempotency_keys"
            " WHERE caller = $1 AND method = $2 AND request_id = $3",
            caller.subject,
            method,
            request_id,
        )
    if row is None or row["response"] is None:
        return None
    if row["request_hash"] != _fingerprint(request):
        raise InvalidArgument.field(
            "request_id", "was already used for a different request"
        )
    return response_type.FromString(row["response"])


async def keep_answer(
    pool: asyncpg.Pool,
    *,
    caller: Caller,
    method: str,
    request: Message,
    response: ResponseT,
) -> ResponseT:
    """Keeps the answer for this request_id; returns the first one kept."""
    request_id: str = getattr(request, "request_id", "")
    if not request_id:
        return response
    digest = _fingerprint(request)
    async with pool.acquire() as conn, conn.transaction():
        kept = await conn.fetchval(
            "INSERT INTO idempotency_keys"
            " (caller, method, request_id, request_hash, response)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            caller.subject,
            method,
            request_id,
            digest,
            response.SerializeToString(deterministic=True),
        )
        if kept:
            return response
        return await _first_answer(
            conn, caller, method, request_id, digest, type(response)
        )
