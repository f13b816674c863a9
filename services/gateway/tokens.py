"""Short-lived signed access tokens, and refresh tokens to renew them.

For development and tests,
    python -m services.gateway.tokens SUBJECT ROLE [AREA_ID ...]
prints an access token for that caller.
"""

import sys
import time
from dataclasses import dataclass

import jwt

from services.common.errors import Unauthenticated
from services.common.identity import Caller, Role
from services.gateway.config import GatewayConfig

ISSUER = "cloudark-gateway"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class Tokens:
    def __init__(self, secret: str, access_seconds: int, refresh_seconds: int) -> None:
        self._secret = secret
        self._lifetimes = {"access": access_seconds, "refresh": refresh_seconds}

    def issue(self, caller: Caller) -> TokenPair:
        return TokenPair(
            access_token=self._sign(caller, "access"),
            refresh_token=self._sign(caller, "refresh"),
            expires_in=self._lifetimes["access"],
        )

    def verify(self, token: str, kind: str = "access") -> Caller:
        """The caller a token stands for; UNAUTHENTICATED if it is not valid now."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "role", "typ"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthenticated(
                f"token not accepted: {type(error).__name__}"
            ) from None
        if claims["typ"] != kind:
            raise Unauthenticated(f"a {claims['typ']} token cannot be used here")
        try:
            role = Role(claims["role"])
        except ValueError:
            raise Unauthenticated("token names an unknown role") from None
        return Caller(
            subject=claims["sub"], role=role, area_ids=tuple(claims.get("areas", []))
        )

    def refresh(self, refresh_token: str) -> TokenPair:
        return self.issue(self.verify(refresh_token, kind="refresh"))

    def _sign(self, caller: Caller, kind: str) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": caller.subject,
            "role": caller.role.value,
            "areas": list(caller.area_ids),
            "typ": kind,
            "iat": now,
            "exp": now + self._lifetimes[kind],
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")


def from_config(config: GatewayConfig) -> Tokens:
    return Tokens(
        config.token_secret, config.access_token_seconds, config.refresh_token_seconds
    )


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    caller = Caller(
        subject=sys.argv[1], role=Role(sys.argv[2]), area_ids=tuple(sys.argv[3:])
    )
    sys.stdout.write(
        from_config(GatewayConfig.from_env()).issue(caller).access_token + "\n"
    )


if __name__ == "__main__":
    main()
