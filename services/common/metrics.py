"""Prometheus metrics: one scrape endpoint per process.

Each process serves /metrics on CLOUDARK_<PROCESS>_METRICS_PORT (defaults
below; 0 turns it off). RPC metrics are recorded at the edge, beside error
mapping, so every service has them without code of its own.
"""

from prometheus_client import Counter, Histogram, start_http_server

from services.common.config import env, env_int

METRICS_PORTS = {
    "worker": 9100,
    "grids": 9101,
    "residents": 9102,
    "notifications": 9103,
    "merchants": 9104,
    "gateway": 9105,
    "codec": 9106,
    "casework": 9108,
    "errands": 9107,
    "care": 9109,
}

RPC_HANDLED = Counter(
    "cloudark_rpc_handled_total",
    "gRPC calls answered, by full method name and status code.",
    ["method", "code"],
)
RPC_DURATION = Histogram(
    "cloudark_rpc_duration_seconds",
    "Time to answer a gRPC call, by full method name.",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def metrics_port(process: str) -> int:
    return env_int(f"CLOUDARK_{process.upper()}_METRICS_PORT", METRICS_PORTS[process])


def serve_metrics(process: str) -> int:
    """Starts the process's /metrics endpoint; returns its port (0: off)."""
    port = metrics_port(process)
    if port:
        start_http_server(port, addr=env("CLOUDARK_METRICS_HOST", "127.0.0.1"))
    return port
