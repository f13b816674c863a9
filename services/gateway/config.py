"""Settings of the HTTP/JSON gateway."""

from dataclasses import dataclass
from pathlib import Path

from services.common.config import ROOT, env, env_int

NAME = "gateway"
DEVELOPMENT_SECRET = "cloudark-development-token-secret-do-not-use"


@dataclass(frozen=True)
class GatewayConfig:
    port: int
    host: str
    token_secret: str
    access_token_seconds: int
    refresh_token_seconds: int
    max_body_bytes: int
    rate_per_second: float
    rate_burst: int
    max_photo_bytes: int
    photo_dir: Path

    @classmethod
    def from_env(cls) -> "GatewayConfig":
        return cls(
            port=env_int("CLOUDARK_GATEWAY_PORT", 8080),
            host=env("CLOUDARK_BIND_HOST", "127.0.0.1"),
            token_secret=env("CLOUDARK_GATEWAY_SECRET", DEVELOPMENT_SECRET),
            access_token_seconds=env_int("CLOUDARK_ACCESS_TOKEN_SECONDS", 900),
            refresh_token_seconds=env_int("CLOUDARK_REFRESH_TOKEN_SECONDS", 30 * 86400),
            max_body_bytes=env_int("CLOUDARK_GATEWAY_MAX_BODY", 1024 * 1024),
            rate_per_second=float(env_int("CLOUDARK_GATEWAY_RATE", 20)),
            rate_burst=env_int("CLOUDARK_GATEWAY_BURST", 40),
            max_photo_bytes=env_int("CLOUDARK_GATEWAY_MAX_PHOTO", 5 * 1024 * 1024),
            photo_dir=Path(env("CLOUDARK_PHOTO_DIR", str(_state_dir() / "photos"))),
        )


def _state_dir() -> Path:
    return Path(env("CLOUDARK_STATE_DIR", str(ROOT / ".state"))).resolve()
