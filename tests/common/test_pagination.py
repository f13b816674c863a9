import pytest

from services.common.errors import InvalidArgument
from services.common.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_token,
    encode_token,
    fingerprint,
    page_size,
)


def test_page_size_zero_means_the_default_and_large_is_clamped() -> None:
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(MAX_PAGE_SIZE + 1) == MAX_PAGE_SIZE


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as raised:
        page_size(-1)
    assert [v.field for v in raised.value.violations] == ["page_size"]


def test_token_round_trips_for_the_same_query() -> None:
    query = fingerprint("ListAreas", "parent-1")
    token = encode_token(query, ["Town 03", "id-3"])

    assert decode_token(token, query) == ["Town 03", "id-3"]
    assert decode_token("", query) is None


@pytest.mark.parametrize("token", ["%%%", "bm90IGpzb24", "eyJ2IjoyLCJjIjpbXX0", "W10"])
def test_tokens_we_did_not_issue_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_token(token, fingerprint("q"))
    assert [v.field for v in raised.value.violations] == ["page_token"]


def test_token_for_another_query_is_refused() -> None:
    token = encode_token(fingerprint("ListAreas", "a"), ["x"])
    with pytest.raises(InvalidArgument):
        decode_token(token, fingerprint("ListAreas", "b"))
