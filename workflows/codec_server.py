"""The codec server: lets the Temporal Web UI and CLI show decrypted payloads.

It speaks Temporal's remote codec protocol: POST /decode and /encode with
{"payloads": [...]} in protobuf JSON. The UI calls it from the operator's
browser (CORS is allowed for CLOUDARK_CODEC_ORIGINS); `temporal workflow show
--codec-endpoint http://localhost:8888` uses it from a shell. When
CLOUDARK_CODEC_TOKEN is set, only callers sending `Authorization: Bearer
<token>` get plaintext; everyone else is refused.

Usage: python -m workflows.codec_server   (port CLOUDARK_CODEC_PORT, 8888)
"""

import asyncio
import hmac
import json
import logging
import signal
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from services.common.config import env, env_int
from services.common.logs import configure_logging
from workflows.codec import EncryptionCodec, codec_from_env

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


class CodecServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        codec: EncryptionCodec,
        *,
        origins: list[str],
        token: str,
    ) -> None:
        super().__init__(address, CodecHandler)
        self.codec = codec
        self.origins = origins
        self.token = token


class CodecHandler(BaseHTTPRequestHandler):
    server: CodecServer

    def do_OPTIONS(self) -> None:
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors()
        self.end_headers()

    def do_POST(self) -> None:
        path = self.path.rstrip("/").rsplit("/", 1)[-1]
        if path not in ("encode", "decode"):
            return self._answer(HTTPStatus.NOT_FOUND, {"message": "unknown path"})
        if not self._authorized():
            return self._answer(HTTPStatus.FORBIDDEN, {"message": "not authorized"})
        try:
            payloads = self._payloads()
            if path == "decode":
                result = [self.server.codec.decrypt(p) for p in payloads.payloads]
            else:
                result = [self.server.codec.encrypt(p) for p in payloads.payloads]
        except (ValueError, json_format.ParseError) as error:
            return self._answer(HTTPStatus.BAD_REQUEST, {"message": str(error)})
        body = json_format.MessageToDict(Payloads(payloads=result))
        self._answer(HTTPStatus.OK, body)

    def _payloads(self) -> Payloads:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("body too large")
        return json_format.Parse(self.rfile.read(length) or b"{}", Payloads())

    def _authorized(self) -> bool:
        if not self.server.token:
            return True
        sent = self.headers.get("Authorization", "")
        return hmac.compare_digest(sent, f"Bearer {self.server.token}")

    def _cors(self) -> None:
        origin = self.headers.get("Origin", "")
        if origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header(
                "Access-Control-Allow-Headers",
                "Content-Type, X-Namespace, Authorization",
            )

    def _answer(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self._cors()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("codec server: %s", format % args)


def create_server(port: int, codec: EncryptionCodec | None = None) -> CodecServer:
    ui_port = env_int("TEMPORAL_UI_PORT", 8233)
    default_origins = f"http://localhost:{ui_port},http://127.0.0.1:{ui_port}"
    origins = env("CLOUDARK_CODEC_ORIGINS", default_origins).split(",")
    return CodecServer(
        (env("CLOUDARK_CODEC_HOST", "127.0.0.1"), port),
        codec or codec_from_env(),
        origins=[o.strip() for o in origins],
        token=env("CLOUDARK_CODEC_TOKEN", ""),
    )


async def _serve() -> None:
    server = create_server(env_int("CLOUDARK_CODEC_PORT", 8888))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    log.info("codec server listening on %s:%s", *server.server_address[:2])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.shutdown()


def main() -> None:
    configure_logging("codec")
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
