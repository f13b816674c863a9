"""A tiny health probe for containers: exits 0 only when the target is serving.

    python -m services.common.healthcheck 127.0.0.1:50051 [service]
    python -m services.common.healthcheck http://127.0.0.1:8080/healthz

A gRPC target is asked through the standard health protocol (the empty
service name means the whole server); an http:// target must answer 200.
Docker's HEALTHCHECK runs it; Kubernetes uses its native gRPC probes instead.
"""

import sys
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT = 3.0


def grpc_serving(address: str, service: str = "", timeout: float = TIMEOUT) -> bool:
    """Whether the gRPC server at address reports service as SERVING."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = TIMEOUT) -> bool:
    """Whether url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def healthy(target: str, service: str = "") -> bool:
    if target.startswith(("http://", "https://")):
        return http_ok(target)
    return grpc_serving(target, service)


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        sys.stderr.write("usage: healthcheck HOST:PORT [SERVICE] | http://URL\n")
        return 2
    return 0 if healthy(*argv) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
