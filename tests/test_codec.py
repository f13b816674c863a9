"""Workflow payloads are sealed: histories hold no readable personal data."""

import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from google.protobuf import json_format
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows.codec import EncryptionCodec
from workflows.codec_server import CodecServer, create_server

PHONE = "13800138000"
KEY_A = b"a" * 32
KEY_B = b"b" * 32


@dataclass
class Greeting:
    resident_name: str
    phone: str


@workflow.defn(sandboxed=False)
class GreetWorkflow:
    @workflow.run
    async def run(self, data: Greeting) -> str:
        return f"hello {data.resident_name}"


async def test_raw_history_holds_no_name_or_phone(
    temporal_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = temporal_env.client
    async with Worker(client, task_queue=task_queue, workflows=[GreetWorkflow]):
        handle = await client.start_workflow(
            GreetWorkflow.run,
            Greeting("Wang Dahai", PHONE),
            id=f"greet-{task_queue}",
            task_queue=task_queue,
        )
        assert await handle.result() == "hello Wang Dahai"

    raw_client = Client(client.service_client, namespace=client.namespace)
    raw = await raw_client.get_workflow_handle(handle.id).fetch_history()
    text = json.dumps(raw.to_json_dict())
    assert "Wang Dahai" not in text
    assert PHONE not in text
    assert base64.b64encode(b"binary/encrypted").decode() in text


async def test_rotated_keys_still_open_old_payloads() -> None:
    old = EncryptionCodec({"a": KEY_A}, active="a")
    rotated = EncryptionCodec({"a": KEY_A, "b": KEY_B}, active="b")
    sealed_before = await old.encode([Payload(data=PHONE.encode())])

    sealed_after = await rotated.encode([Payload(data=PHONE.encode())])
    opened = await rotated.decode(sealed_before + sealed_after)

    assert sealed_after[0].metadata["encryption-key-id"] == b"b"
    assert [p.data for p in opened] == [PHONE.encode()] * 2


async def test_tampered_or_unknown_key_payloads_are_refused() -> None:
    codec = EncryptionCodec({"a": KEY_A}, active="a")
    sealed = (await codec.encode([Payload(data=b"x")]))[0]
    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    stranger = EncryptionCodec({"b": KEY_B}, active="b")

    with pytest.raises(ValueError, match="tampered"):
        await codec.decode([tampered])
    with pytest.raises(ValueError, match="unknown key"):
        await stranger.decode([sealed])


@pytest.fixture
def codec_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[CodecServer]:
    monkeypatch.setenv("CLOUDARK_CODEC_TOKEN", "s3cret")
    monkeypatch.setenv("CLOUDARK_CODEC_ORIGINS", "http://localhost:8233")
    server = create_server(0, EncryptionCodec({"a": KEY_A}, active="a"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _post(
    server: CodecServer, path: str, body: object, token: str
) -> tuple[int, dict[str, object], dict[str, str]]:
    port = server.server_address[1]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Origin": "http://localhost:8233",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read()), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


async def test_codec_server_decodes_for_authorized_operators_only(
    codec_server: CodecServer,
) -> None:
    converter = DataConverter(payload_codec=codec_server.codec)
    sealed = await converter.encode([PHONE])
    body = {"payloads": [json_format.MessageToDict(p) for p in sealed]}

    status, decoded, headers = _post(codec_server, "/decode", body, "s3cret")
    refused, _, _ = _post(codec_server, "/decode", body, "wrong")

    assert status == 200
    payloads = decoded["payloads"]
    assert isinstance(payloads, list)
    assert base64.b64decode(payloads[0]["data"]) == f'"{PHONE}"'.encode()
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:8233"
    assert refused == 403
