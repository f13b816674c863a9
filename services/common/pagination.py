"""Page sizes and opaque page tokens for every List RPC.

A token records the query it belongs to (a fingerprint of the filter) and
the keyset cursor after the last row returned, so pages stay stable while
rows are added and a token cannot be replayed against another query.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Cursor = list[Any]


def page_size(requested: int) -> int:
    """0 means the default; larger than the maximum is clamped; negative is bad."""
    if requested < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def fingerprint(*parts: object) -> str:
    """A short digest of the filter a token is valid for."""
    raw = json.dumps([str(p) for p in parts]).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def encode_token(query: str, cursor: Sequence[Any]) -> str:
    raw = json.dumps({"v": 1, "q": query, "c": list(cursor)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str, query: str) -> Cursor | None:
    """The cursor in a token from encode_token; None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("v") != 1:
            raise ValueError("unknown token version")
        cursor = data["c"]
        if not isinstance(cursor, list):
            raise ValueError("cursor is not a list")
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument.field(
            "page_token", "is not a page token this service issued"
        ) from None
    if data.get("q") != query:
        raise InvalidArgument.field(
            "page_token", "was issued for a different query; start again without it"
        )
    return cursor
