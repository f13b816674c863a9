"""Re-encrypts personal numbers under the active key, after a key rotation.

Rotate by adding the new key to CLOUDARK_PII_KEYS, making it
CLOUDARK_PII_ACTIVE_KEY, restarting the service (new data uses it, old data
still opens with the old key), then running

    python -m services.residents.rekey

until it reports nothing left; only then drop the old key. The lookup hashes
do not change (their key is separate), so searches keep working throughout.
"""

import asyncio
import logging

import asyncpg

from services.common import db
from services.common.config import Settings
from services.common.logs import configure_logging
from services.residents import config
from services.residents.pii import Keyring

log = logging.getLogger(__name__)

BATCH = 500


async def reencrypt(pool: asyncpg.Pool, keyring: Keyring, batch: int = BATCH) -> int:
    """Re-seals every resident not under the active key; returns how many."""
    total = 0
    while True:
        done = await _reencrypt_batch(pool, keyring, batch)
        total += done
        if done < batch:
            return total


async def _reencrypt_batch(pool: asyncpg.Pool, keyring: Keyring, batch: int) -> int:
    async with pool.acquire() as conn, conn.transaction():
        # SKIP LOCKED lets several runs share the work and never waits on a
        # resident being edited; the edit itself seals with the active key.
        rows = await conn.fetch(
            "SELECT id, pii_key_id, national_id_cipher, phone_cipher FROM residents"
            " WHERE pii_key_id <> $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
            keyring.active,
            batch,
        )
        updates = []
        for row in rows:
            contexts = (f"{row['id']}:national_id", f"{row['id']}:phone")
            national_id = keyring.decrypt(
                row["pii_key_id"], row["national_id_cipher"], contexts[0]
            )
            phone = keyring.decrypt(row["pii_key_id"], row["phone_cipher"], contexts[1])
            updates.append(
                (
                    row["id"],
                    keyring.active,
                    keyring.encrypt(national_id, contexts[0]),
                    keyring.encrypt(phone, contexts[1]),
                )
            )
        await conn.executemany(
            "UPDATE residents SET pii_key_id = $2, national_id_cipher = $3,"
            " phone_cipher = $4 WHERE id = $1",
            updates,
        )
    if updates:
        log.info("re-encrypted %s residents under key %s", len(updates), keyring.active)
    return len(updates)


async def _main() -> None:
    settings = Settings.from_env()
    pool = await db.create_pool(settings, config.SCHEMA)
    try:
        total = await reencrypt(pool, Keyring.from_env())
    finally:
        await pool.close()
    log.info("re-encryption finished: %s residents re-sealed", total)


if __name__ == "__main__":
    configure_logging("residents-rekey")
    asyncio.run(_main())
