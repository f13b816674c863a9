"""Photos that residents and grid workers attach to tip-offs, hazards and
deliveries: checked at the door, stored by content, named by a reference.

A photo is accepted only when its declared type is JPEG, PNG or WebP, its
first bytes say the same, and it is no larger than the configured limit. It is
stored under the SHA-256 of its bytes, so the same photo sent twice is stored
once and gets the same reference. The services keep only references
(`photos/<sha256>.<ext>`), never the bytes.
"""

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from services.common.errors import InvalidArgument, NotFound

# The first bytes of each accepted type.
SIGNATURES = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/webp": (b"RIFF",),
}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
TYPES_BY_EXTENSION = {ext: kind for kind, ext in EXTENSIONS.items()}
REF = re.compile(r"^photos/([0-9a-f]{64})\.(jpg|png|webp)$")


@dataclass(frozen=True)
class StoredPhoto:
    ref: str
    content_type: str
    size: int


class PhotoStore(Protocol):
    """Where photo bytes live. The folder store serves one machine; a
    deployment with several gateways puts an object store behind this."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes | None: ...


class FolderStore:
    """Photos as files in one folder, written atomically."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def put(self, name: str, data: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        target = self._folder / name
        if target.exists():
            return
        # Written aside and renamed, so a reader never sees half a photo.
        fd, partial = tempfile.mkstemp(dir=self._folder, prefix=".upload-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, target)

    def get(self, name: str) -> bytes | None:
        target = self._folder / name
        return target.read_bytes() if target.is_file() else None


def accept(content_type: str, data: bytes, max_bytes: int) -> StoredPhoto:
    """Checks an upload; INVALID_ARGUMENT naming what is wrong with it."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in SIGNATURES:
        allowed = ", ".join(SIGNATURES)
        raise InvalidArgument.field("content_type", f"must be one of {allowed}")
    if not data:
        raise InvalidArgument.field("body", "is empty")
    if len(data) > max_bytes:
        raise InvalidArgument.field("body", f"must be at most {max_bytes} bytes")
    if not _looks_like(kind, data):
        raise InvalidArgument.field("body", f"is not a {kind} image")
    digest = hashlib.sha256(data).hexdigest()
    return StoredPhoto(f"photos/{digest}.{EXTENSIONS[kind]}", kind, len(data))


def file_name(ref: str) -> tuple[str, str]:
    """The stored file name and content type of a reference."""
    match = REF.match(ref)
    if match is None:
        raise NotFound("photo", "ref")
    return f"{match[1]}.{match[2]}", TYPES_BY_EXTENSION[match[2]]


def _looks_like(kind: str, data: bytes) -> bool:
    if kind == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return any(data.startswith(signature) for signature in SIGNATURES[kind])
