"""Personal data done right: national ID and phone numbers.

Numbers are validated and normalised here, encrypted with AES-GCM before they
reach the database (each ciphertext says which key made it, so keys can
rotate), found through an HMAC of the normalised number under a separate key,
and masked for callers who may not see them in full.

Keys come from the environment:
  CLOUDARK_PII_KEYS        "keyid:base64key,..." (32-byte AES keys)
  CLOUDARK_PII_ACTIVE_KEY  the key id that encrypts new data
  CLOUDARK_PII_HMAC_KEY    base64, at least 32 bytes, for the lookup hashes
When none of them is set, a fixed development key is used and a warning
says so at every start; never run a real city like that.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KEYS_VAR = "CLOUDARK_PII_KEYS"
ACTIVE_VAR = "CLOUDARK_PII_ACTIVE_KEY"
HMAC_VAR = "CLOUDARK_PII_HMAC_KEY"

_DEV_KEY_ID = "dev"
_DEV_KEY = hashlib.sha256(b"cloudark development pii key").digest()
_DEV_HMAC_KEY = hashlib.sha256(b"cloudark development pii lookup key").digest()

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_MOBILE = re.compile(r"1[3-9]\d{9}")


class PiiKeyError(Exception):
    """The key configuration is unusable, or a ciphertext cannot be read."""


# ---- validation and normalisation ----


def normalise_national_id(raw: str) -> str | None:
    """The 18-character resident ID number, upper-case; None when invalid.

    Checks the form, the birth date's plausibility and the ISO 7064 MOD 11-2
    check character (GB 11643).
    """
    value = raw.strip().upper()
    if len(value) != 18 or not value[:17].isdigit() or not value[:17].isascii():
        return None
    month, day = int(value[10:12]), int(value[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    if _CHECK_CHARS[total % 11] != value[17]:
        return None
    return value


def national_id_check_char(first17: str) -> str:
    """The check character that completes 17 digits into a valid ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_phone(raw: str) -> str | None:
    """The 11-digit mainland mobile number; None when it is not one.

    Spaces and hyphens are ignored, and a +86 or 0086 country code dropped.
    """
    value = re.sub(r"[\s-]", "", raw)
    for prefix in ("+86", "0086"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    return value if value.isascii() and _MOBILE.fullmatch(value) else None


def mask_national_id(value: str) -> str:
    """330***********1234: the region's first digits and the last four."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_phone(value: str) -> str:
    """138****5678."""
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_name(value: str) -> str:
    """王* for the public ranking: the first character and one mask."""
    return value[:1] + "*" if value else ""


# ---- encryption and lookup ----


@dataclass(frozen=True)
class Keyring:
    """The AES keys by id, the id that encrypts new data, and the HMAC key."""

    keys: dict[str, bytes]
    active: str
    hmac_key: bytes
    development: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Keyring:
        environ = dict(os.environ) if environ is None else environ
        raw_keys = environ.get(KEYS_VAR, "").strip()
        active = environ.get(ACTIVE_VAR, "").strip()
        raw_hmac = environ.get(HMAC_VAR, "").strip()
        if not (raw_keys or active or raw_hmac):
            log.warning(
                "no %s set: personal data is encrypted with the public"
                " DEVELOPMENT key; set %s, %s and %s for any real data",
                KEYS_VAR,
                KEYS_VAR,
                ACTIVE_VAR,
                HMAC_VAR,
            )
            return cls({_DEV_KEY_ID: _DEV_KEY}, _DEV_KEY_ID, _DEV_HMAC_KEY, True)
        keys = _parse_keys(raw_keys)
        if active not in keys:
            raise PiiKeyError(f"{ACTIVE_VAR} must name one of the ids in {KEYS_VAR}")
        hmac_key = _decode(raw_hmac, HMAC_VAR)
        if len(hmac_key) < 32:
            raise PiiKeyError(f"{HMAC_VAR} must be at least 32 bytes")
        return cls(keys, active, hmac_key)

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """nonce || ciphertext under the active key; context binds it to its row."""
        nonce = os.urandom(12)
        sealed = _cipher(self.keys[self.active]).encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        return nonce + sealed

    def decrypt(self, key_id: str, blob: bytes, context: str) -> str:
        key = self.keys.get(key_id)
        if key is None:
            raise PiiKeyError(f"no key {key_id!r} to decrypt with")
        try:
            plain = _cipher(key).decrypt(blob[:12], blob[12:], context.encode())
        except InvalidTag:
            raise PiiKeyError(f"ciphertext does not open with key {key_id!r}") from None
        return plain.decode()

    def lookup_hash(self, kind: str, normalised: str) -> bytes:
        """The keyed hash the database indexes instead of the number."""
        message = f"{kind}:{normalised}".encode()
        return hmac.new(self.hmac_key, message, hashlib.sha256).digest()


@functools.lru_cache(maxsize=16)
def _cipher(key: bytes) -> AESGCM:
    # Building the cipher expands the key; every read of a resident needs it.
    return AESGCM(key)


def _parse_keys(raw: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise PiiKeyError(f"{KEYS_VAR} entries look like keyid:base64key")
        key = _decode(encoded, KEYS_VAR)
        if len(key) != 32:
            raise PiiKeyError(f"{KEYS_VAR}: key {key_id!r} must be 32 bytes")
        keys[key_id] = key
    if not keys:
        raise PiiKeyError(f"{KEYS_VAR} holds no keys")
    return keys


def _decode(encoded: str, variable: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PiiKeyError(f"{variable} is not valid base64") from None
