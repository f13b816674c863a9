"""Configuration shared by every Cloud Ark process, read from the environment.

Every variable is listed, with its default, in the README's configuration
table. Unset variables fall back to the embedded stack that `make run` starts.
"""

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The gRPC services and the port each listens on by default.
SERVICE_PORTS = {
    "grids": 50051,
    "residents": 50052,
    "notifications": 50053,
    "merchants": 50054,
    "errands": 50055,
    "casework": 50056,
    "care": 50057,
}


def env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_int(name: str, default: int) -> int:
    raw = env(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = env(name, "true" if default else "false").lower()
    if raw not in {"1", "0", "true", "false", "yes", "no"}:
        raise SystemExit(f"{name} must be true or false, not {raw!r}")
    return raw in {"1", "true", "yes"}


@dataclass(frozen=True)
class Settings:
    """Where the shared parts are and how to reach them."""

    state_dir: Path
    database_url: str
    database_is_embedded: bool
    embedded_pg_port: int
    temporal_address: str
    temporal_is_embedded: bool
    temporal_namespace: str
    temporal_task_queue: str
    temporal_ui_port: int
    bind_host: str
    migrate_on_start: bool
    db_pool_min: int
    db_pool_max: int

    @classmethod
    def from_env(cls) -> "Settings":
        state_dir = Path(env("CLOUDARK_STATE_DIR", str(ROOT / ".state"))).resolve()
        pg_port = env_int("CLOUDARK_PG_PORT", 55432)
        temporal_port = env_int("CLOUDARK_TEMPORAL_PORT", 7233)
        database_url = os.environ.get("DATABASE_URL", "").strip()
        temporal_address = os.environ.get("TEMPORAL_ADDRESS", "").strip()
        return cls(
            state_dir=state_dir,
            database_url=database_url
            or f"postgresql://postgres@127.0.0.1:{pg_port}/cloudark",
            database_is_embedded=not database_url,
            embedded_pg_port=pg_port,
            temporal_address=temporal_address or f"127.0.0.1:{temporal_port}",
            temporal_is_embedded=not temporal_address,
            temporal_namespace=env("TEMPORAL_NAMESPACE", "default"),
            temporal_task_queue=env("TEMPORAL_TASK_QUEUE", "cloudark"),
            temporal_ui_port=env_int("TEMPORAL_UI_PORT", 8233),
            bind_host=env("CLOUDARK_BIND_HOST", "127.0.0.1"),
            migrate_on_start=env_bool("CLOUDARK_MIGRATE_ON_START", True),
            db_pool_min=env_int("CLOUDARK_DB_POOL_MIN", 1),
            db_pool_max=env_int("CLOUDARK_DB_POOL_MAX", 10),
        )

    def service_port(self, service: str) -> int:
        """The port a service listens on: CLOUDARK_<SERVICE>_PORT or its default."""
        return env_int(f"CLOUDARK_{service.upper()}_PORT", SERVICE_PORTS[service])

    def service_address(self, service: str) -> str:
        """Where clients reach a service: CLOUDARK_<SERVICE>_ADDRESS or loopback."""
        default = f"127.0.0.1:{self.service_port(service)}"
        return env(f"CLOUDARK_{service.upper()}_ADDRESS", default)
