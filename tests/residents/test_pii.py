"""Validation, masking and encryption of personal numbers, without a server."""

import base64
import logging
import os

import pytest

from services.residents import pii
from services.residents.pii import Keyring, PiiKeyError


@pytest.mark.parametrize(
    "raw",
    ["11010519491231002X", "11010519491231002x", " 11010519491231002X "],
)
def test_valid_national_ids_are_normalised(raw: str) -> None:
    assert pii.normalise_national_id(raw) == "11010519491231002X"


@pytest.mark.parametrize(
    "raw",
    [
        "110105194912310021",  # wrong check character
        "11010519491231002",  # 17 characters
        "1101051949123100211",  # 19 characters
        "11010519491331002X",  # month 13
        "A1010519491231002X",  # a letter in the body
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "",
    ],
)
def test_malformed_national_ids_are_refused(raw: str) -> None:
    assert pii.normalise_national_id(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("008613812345678", "13812345678"),
        ("12812345678", None),  # no mobile prefix starts 12
        ("1381234567", None),
        ("138123456789", None),
        ("0571-88888888", None),  # a landline
    ],
)
def test_mainland_mobile_numbers(raw: str, expected: str | None) -> None:
    assert pii.normalise_phone(raw) == expected


def test_masks_keep_only_the_agreed_digits() -> None:
    assert pii.mask_national_id("33090219491231002X") == "330***********002X"
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_name("王海") == "王*"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_ciphertexts_open_with_the_key_that_made_them_after_rotation() -> None:
    old, new, lookup = _key(), _key(), _key()
    before = Keyring.from_env(
        {
            pii.KEYS_VAR: f"k1:{old}",
            pii.ACTIVE_VAR: "k1",
            pii.HMAC_VAR: lookup,
        }
    )
    sealed = before.encrypt("13812345678", "r1:phone")
    after = Keyring.from_env(
        {
            pii.KEYS_VAR: f"k1:{old},k2:{new}",
            pii.ACTIVE_VAR: "k2",
            pii.HMAC_VAR: lookup,
        }
    )

    assert after.decrypt("k1", sealed, "r1:phone") == "13812345678"
    assert after.active == "k2"
    assert after.lookup_hash("phone", "1") == before.lookup_hash("phone", "1")
    assert b"13812345678" not in sealed


def test_a_ciphertext_moved_to_another_row_does_not_open() -> None:
    ring = Keyring.from_env({})
    sealed = ring.encrypt("13812345678", "r1:phone")

    with pytest.raises(PiiKeyError):
        ring.decrypt(ring.active, sealed, "r2:phone")


@pytest.mark.parametrize(
    "environ",
    [
        {pii.KEYS_VAR: "k1:" + _key()},  # no active key, no lookup key
        {pii.KEYS_VAR: "k1:short", pii.ACTIVE_VAR: "k1", pii.HMAC_VAR: _key()},
        {pii.KEYS_VAR: "k1:" + _key(), pii.ACTIVE_VAR: "k2", pii.HMAC_VAR: _key()},
        {pii.KEYS_VAR: "k1:" + _key(), pii.ACTIVE_VAR: "k1", pii.HMAC_VAR: "abc"},
    ],
)
def test_incomplete_key_configuration_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(PiiKeyError):
        Keyring.from_env(environ)


def test_the_development_key_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ring = Keyring.from_env({})

    assert ring.development
    assert "DEVELOPMENT key" in caplog.text
