"""The HTTP/JSON gateway: `python -m services.gateway.server`.

Every RPC with a `google.api.http` binding in the protos is served at its
path. The gateway checks the caller's bearer token, limits its rate, turns
the JSON into the gRPC request, passes the caller's identity on in metadata
(the services decide what it may do), and turns the answer or the error
back into JSON.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import uvicorn
from google.protobuf import message_factory
from google.protobuf.message import Message
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.routing import Route as HttpRoute
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from services.common.config import Settings
from services.common.errors import (
    DomainError,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from services.common.identity import Caller
from services.common.logs import configure_logging
from services.common.metrics import serve_metrics
from services.common.tls import open_channel, tls_from_env
from services.common.tracing import setup_tracing
from services.gateway import openapi, photos, problems
from services.gateway.config import DEVELOPMENT_SECRET, NAME, GatewayConfig
from services.gateway.ratelimit import RateLimiter
from services.gateway.routes import Route, discover
from services.gateway.tokens import Tokens, from_config
from services.gateway.transcode import build_request, to_json

log = logging.getLogger(__name__)

Channels = Callable[[str], grpc.aio.Channel]
PROBLEM_JSON = "application/problem+json"
CALL_TIMEOUT = 15.0


class Gateway:
    def __init__(
        self, config: GatewayConfig, tokens: Tokens, channels: Channels
    ) -> None:
        self._config = config
        self._tokens = tokens
        self._channels = channels
        self._limiter = RateLimiter(config.rate_per_second, config.rate_burst)
        self._photos: photos.PhotoStore = photos.FolderStore(config.photo_dir)
        self.routes = discover()

    def endpoint(self, route: Route) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                caller = self._caller(request)
                retry_after = self._limiter.take(caller.subject)
                if retry_after:
                    return _rate_limited(retry_after)
                message = build_request(
                    route,
                    request.path_params,
                    request.query_params,
                    await self._body(request, route),
                )
                return JSONResponse(to_json(await self._call(route, message, caller)))
            except DomainError as error:
                return _problem(
                    problems.problem(error.code, error.message, _violations(error))
                )
            except grpc.aio.AioRpcError as error:
                return _problem(problems.from_rpc_error(error))

        return handle

    async def refresh(self, request: Request) -> Response:
        try:
            body = await self._json(request)
            token = body.get("refresh_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise InvalidArgument.field("refresh_token", "is required")
            pair = self._tokens.refresh(token)
        except DomainError as error:
            return _problem(
                problems.problem(error.code, error.message, _violations(error))
            )
        return JSONResponse(pair.__dict__)

    async def upload_photo(self, request: Request) -> Response:
        """Stores the photo in the body; answers its reference for attachment_refs."""
        try:
            caller = self._caller(request)
            retry_after = self._limiter.take(caller.subject)
            if retry_after:
                return _rate_limited(retry_after)
            limit = self._config.max_photo_bytes
            if int(request.headers.get("content-length") or 0) > limit:
                raise InvalidArgument.field("body", f"must be at most {limit} bytes")
            data = await request.body()
            stored = photos.accept(request.headers.get("content-type", ""), data, limit)
            self._photos.put(photos.file_name(stored.ref)[0], data)
        except DomainError as error:
            return _problem(
                problems.problem(error.code, error.message, _violations(error))
            )
        log.info("photo %s stored (%s bytes)", stored.ref, stored.size)
        return JSONResponse(stored.__dict__, status_code=201)

    async def get_photo(self, request: Request) -> Response:
        try:
            self._caller(request)
            name, content_type = photos.file_name(
                f"photos/{request.path_params['name']}"
            )
            data = self._photos.get(name)
            if data is None:
                raise NotFound("photo", "ref")
        except DomainError as error:
            return _problem(
                problems.problem(error.code, error.message, _violations(error))
            )
        return Response(data, media_type=content_type)

    def _caller(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("send an access token: Authorization: Bearer <token>")
        return self._tokens.verify(token.strip())

    async def _body(self, request: Request, route: Route) -> Any:
        if route.body != "*":
            return None
        return await self._json(request)

    async def _json(self, request: Request) -> Any:
        declared = int(request.headers.get("content-length") or 0)
        if declared > self._config.max_body_bytes:
            raise InvalidArgument.field(
                "body", f"must be at most {self._config.max_body_bytes} bytes"
            )
        raw = await request.body()
        if len(raw) > self._config.max_body_bytes:
            raise InvalidArgument.field(
                "body", f"must be at most {self._config.max_body_bytes} bytes"
            )
        try:
            return json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise InvalidArgument.field("body", "is not valid JSON") from None

    async def _call(self, route: Route, message: Message, caller: Caller) -> Message:
        response_class = message_factory.GetMessageClass(route.method.output_type)
        rpc = self._channels(route.service).unary_unary(
            route.grpc_path,
            request_serializer=_serialize,
            response_deserializer=response_class.FromString,
        )
        response: Message = await rpc(
            message, metadata=caller.metadata(), timeout=CALL_TIMEOUT
        )
        return response


def create_app(config: GatewayConfig, channels: Channels) -> Starlette:
    gateway = Gateway(config, from_config(config), channels)
    spec = openapi.document(gateway.routes, openapi.GATEWAY_PATHS)
    http_routes: list[BaseRoute] = [
        HttpRoute(route.template, gateway.endpoint(route), methods=[route.verb])
        for route in gateway.routes
    ]
    http_routes += [
        HttpRoute("/v1/auth:refresh", gateway.refresh, methods=["POST"]),
        HttpRoute("/v1/photos", gateway.upload_photo, methods=["POST"]),
        HttpRoute("/v1/photos/{name}", gateway.get_photo, methods=["GET"]),
        HttpRoute("/openapi.json", lambda _: JSONResponse(spec), methods=["GET"]),
        HttpRoute("/docs", lambda _: HTMLResponse(DOCS_PAGE), methods=["GET"]),
        HttpRoute(
            "/healthz", lambda _: JSONResponse({"status": "SERVING"}), methods=["GET"]
        ),
        Mount("/docs/assets", app=StaticFiles(directory=swagger_ui_path)),
    ]
    return Starlette(routes=http_routes)


def channel_pool(settings: Settings) -> Channels:
    channels: dict[str, grpc.aio.Channel] = {}
    tls = tls_from_env()

    def channel(service: str) -> grpc.aio.Channel:
        if service not in channels:
            channels[service] = open_channel(settings.service_address(service), tls)
        return channels[service]

    return channel


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _violations(error: DomainError) -> list[dict[str, str]]:
    if isinstance(error, InvalidArgument):
        return [
            {"field": v.field, "description": v.description} for v in error.violations
        ]
    return []


def _problem(body: dict[str, Any]) -> Response:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON)


def _rate_limited(retry_after: float) -> Response:
    body = problems.problem(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests", [])
    response = _problem(body)
    response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Cloud Ark API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body></html>"""


def main() -> None:
    configure_logging(NAME)
    setup_tracing(NAME)
    serve_metrics(NAME)
    config = GatewayConfig.from_env()
    if config.token_secret == DEVELOPMENT_SECRET:
        log.warning(
            "tokens signed with the DEVELOPMENT secret: set CLOUDARK_GATEWAY_SECRET"
        )
    app = create_app(config, channel_pool(Settings.from_env()))
    log.info("gateway listening on http://%s:%s", config.host, config.port)
    uvicorn.run(
        app, host=config.host, port=config.port, log_config=None, access_log=False
    )


if __name__ == "__main__":
    main()
