"""Mutual TLS between Cloud Ark and the systems that call it.

Off by default (plain loopback for `make run`). When CLOUDARK_TLS_CERT,
CLOUDARK_TLS_KEY and CLOUDARK_TLS_CA name PEM files, every gRPC server
requires a client certificate signed by that CA, and every channel we open
presents the process's own certificate.

A client certificate maps to an identity through CLOUDARK_TLS_CLIENTS, a JSON
file keyed by the certificate's common name:

    {"insurance-office": {"role": "system",
                          "methods": ["/cloudark.grids.v1.GridsService/GetArea"]},
     "gateway": {"role": "system", "methods": ["*"], "delegates": true}}

A `delegates` client (our gateway, our worker) may call on behalf of the
caller named in the request metadata; any other client is the identity its
certificate maps to, and may call only its listed methods.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from services.common.errors import PermissionDenied, Unauthenticated
from services.common.identity import Caller, Role

# Any client the CA vouches for may ask whether a server is up.
OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class ClientIdentity:
    subject: str
    role: Role
    methods: frozenset[str]
    delegates: bool = False
    area_ids: tuple[str, ...] = ()

    def allows(self, method: str) -> bool:
        return "*" in self.methods or method in self.methods


@dataclass(frozen=True)
class TlsConfig:
    cert: bytes
    key: bytes
    ca: bytes
    clients: dict[str, ClientIdentity] = field(default_factory=dict)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def open_channel(address: str, tls: TlsConfig | None) -> grpc.aio.Channel:
    """A channel to one of our servers, presenting our certificate when TLS is on."""
    if tls is None:
        return grpc.aio.insecure_channel(address)
    return grpc.aio.secure_channel(address, tls.channel_credentials())


def tls_from_env() -> TlsConfig | None:
    paths = [
        os.environ.get(f"CLOUDARK_TLS_{name}", "") for name in ("CERT", "KEY", "CA")
    ]
    if not any(paths):
        return None
    if not all(paths):
        raise SystemExit(
            "set all of CLOUDARK_TLS_CERT, CLOUDARK_TLS_KEY, CLOUDARK_TLS_CA"
        )
    cert, key, ca = (Path(p).read_bytes() for p in paths)
    clients_file = os.environ.get("CLOUDARK_TLS_CLIENTS", "")
    clients = load_clients(Path(clients_file)) if clients_file else {}
    return TlsConfig(cert=cert, key=key, ca=ca, clients=clients)


def load_clients(path: Path) -> dict[str, ClientIdentity]:
    raw: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return {name: _client(name, entry) for name, entry in raw.items()}


def _client(name: str, entry: dict[str, Any]) -> ClientIdentity:
    return ClientIdentity(
        subject=str(entry.get("subject", name)),
        role=Role(entry.get("role", "system")),
        methods=frozenset(entry.get("methods", [])),
        delegates=bool(entry.get("delegates", False)),
        area_ids=tuple(entry.get("area_ids", [])),
    )


def transport_caller(
    tls: TlsConfig, method: str, context: grpc.aio.ServicerContext[Any, Any]
) -> Caller | None:
    """The caller a client certificate stands for, or None to read metadata.

    Raises UNAUTHENTICATED for a certificate we have no identity for, and
    PERMISSION_DENIED for a method its identity may not call.
    """
    if method.startswith(OPEN_METHODS):
        return None
    names = list(context.auth_context().get("x509_common_name", []))
    client = tls.clients.get(names[0].decode()) if names else None
    if client is None:
        raise Unauthenticated("the client certificate maps to no known system")
    if not client.allows(method):
        raise PermissionDenied(f"{client.subject} may not call {method}")
    if client.delegates:
        return None
    return Caller(subject=client.subject, role=client.role, area_ids=client.area_ids)
