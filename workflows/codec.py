"""Encrypts every workflow payload before it reaches the Temporal server.

Workflow inputs, results, signals and activity arguments may hold personal
data, so histories keep only AES-GCM ciphertext. Each payload names the key
that sealed it, so keys can rotate: new payloads use the active key, old ones
stay readable while their key is still configured.

Keys come from CLOUDARK_PAYLOAD_KEYS ("id:base64key,id2:base64key", 32-byte
keys) and CLOUDARK_PAYLOAD_ACTIVE_KEY (default: the first). Without them a
fixed development key is used, and a warning says so.
"""

import base64
import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

log = logging.getLogger(__name__)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
# Only for `make run` and tests: anyone with this source can read such payloads.
DEVELOPMENT_KEYS = {"dev-1": b"cloudark-development-key-32bytes"}


class EncryptionCodec(PayloadCodec):
    """AES-GCM over whole serialized payloads, tagged with their key id."""

    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise ValueError(f"active key {active!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._active.encode()
        sealed = self._ciphers[self._active].encrypt(
            nonce, payload.SerializeToString(), key_id
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"")
        cipher = self._ciphers.get(key_id.decode())
        if cipher is None:
            raise ValueError(f"payload sealed with unknown key {key_id.decode()!r}")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id))
        except InvalidTag:
            raise ValueError(
                "payload does not decrypt: wrong key or tampered"
            ) from None


def keys_from_env() -> tuple[dict[str, bytes], str]:
    """The configured keys and the active key id."""
    raw = os.environ.get("CLOUDARK_PAYLOAD_KEYS", "").strip()
    if not raw:
        log.warning(
            "payloads sealed with the DEVELOPMENT key: set CLOUDARK_PAYLOAD_KEYS"
        )
        return DEVELOPMENT_KEYS, "dev-1"
    keys = dict(_parse_keys(raw.split(",")))
    active = os.environ.get("CLOUDARK_PAYLOAD_ACTIVE_KEY", "").strip()
    return keys, active or next(iter(keys))


def _parse_keys(entries: Iterable[str]) -> Iterable[tuple[str, bytes]]:
    for entry in entries:
        key_id, _, encoded = entry.strip().partition(":")
        key = base64.b64decode(encoded)
        if not key_id or len(key) != 32:
            raise SystemExit("CLOUDARK_PAYLOAD_KEYS entries are id:base64 of 32 bytes")
        yield key_id, key


def codec_from_env() -> EncryptionCodec:
    keys, active = keys_from_env()
    return EncryptionCodec(keys, active)


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """The converter every Cloud Ark client and worker uses."""
    return dataclasses.replace(
        DataConverter.default, payload_codec=codec or codec_from_env()
    )
