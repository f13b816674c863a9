"""Photo uploads through the gateway: type, size and content checked at the door."""

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest

from services.gateway.server import create_app
from tests.gateway.test_gateway import CONFIG, RESIDENT, bearer

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(200))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(50)
LIMIT = 1024


@pytest.fixture
async def http(
    grids_channel: grpc.aio.Channel, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    config = dataclasses.replace(CONFIG, photo_dir=tmp_path, max_photo_bytes=LIMIT)
    app = create_app(config, lambda service: grids_channel)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway"
    ) as client:
        yield client


async def upload(
    http: httpx.AsyncClient, data: bytes, content_type: str
) -> httpx.Response:
    headers = {**bearer(RESIDENT.access_token), "Content-Type": content_type}
    return await http.post("/v1/photos", content=data, headers=headers)


async def test_a_photo_is_stored_once_by_its_content_and_read_back(
    http: httpx.AsyncClient, tmp_path: Path
) -> None:
    first = await upload(http, JPEG, "image/jpeg")
    again = await upload(http, JPEG, "image/jpeg")
    name = first.json()["ref"].removeprefix("photos/")
    fetched = await http.get(
        f"/v1/photos/{name}", headers=bearer(RESIDENT.access_token)
    )

    assert first.status_code == 201, first.text
    assert first.json() == {
        "ref": f"photos/{hashlib.sha256(JPEG).hexdigest()}.jpg",
        "content_type": "image/jpeg",
        "size": len(JPEG),
    }
    assert again.json()["ref"] == first.json()["ref"]
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert fetched.status_code == 200
    assert fetched.content == JPEG
    assert fetched.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    ("data", "content_type"), [(PNG, "image/png"), (WEBP, "image/webp")]
)
async def test_png_and_webp_are_accepted(
    http: httpx.AsyncClient, data: bytes, content_type: str
) -> None:
    reply = await upload(http, data, content_type)

    assert reply.status_code == 201, reply.text
    assert reply.json()["content_type"] == content_type


@pytest.mark.parametrize(
    ("data", "content_type", "field"),
    [
        (b"%PDF-1.7 not a photo", "application/pdf", "content_type"),
        (PNG, "image/jpeg", "body"),
        (b"", "image/jpeg", "body"),
        (JPEG + bytes(LIMIT), "image/jpeg", "body"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "image/webp", "body"),
    ],
    ids=["wrong-type", "png-sent-as-jpeg", "empty", "too-large", "riff-not-webp"],
)
async def test_bad_uploads_are_refused_naming_the_field_and_store_nothing(
    http: httpx.AsyncClient,
    tmp_path: Path,
    data: bytes,
    content_type: str,
    field: str,
) -> None:
    reply = await upload(http, data, content_type)

    assert reply.status_code == 400
    assert reply.headers["content-type"] == "application/problem+json"
    assert [v["field"] for v in reply.json()["violations"]] == [field]
    assert list(tmp_path.iterdir()) == []


async def test_photos_need_a_token_and_unknown_ones_are_not_found(
    http: httpx.AsyncClient,
) -> None:
    anonymous = await http.post(
        "/v1/photos", content=JPEG, headers={"Content-Type": "image/jpeg"}
    )
    missing = await http.get(
        f"/v1/photos/{'0' * 64}.jpg", headers=bearer(RESIDENT.access_token)
    )
    traversal = await http.get(
        "/v1/photos/..%2F..%2Fetc%2Fpasswd", headers=bearer(RESIDENT.access_token)
    )

    assert anonymous.status_code == 401
    assert missing.status_code == 404
    assert traversal.status_code == 404
