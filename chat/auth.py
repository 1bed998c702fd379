"""Tokens: the platform signs a JWT for each user; tsunagu only verifies it.

HS256 with a shared secret, RS256 or EdDSA with a PEM public key. Only algorithms in the
configured allowlist are accepted (``alg: none`` and algorithm confusion are refused), ``exp``
is required, ``iss``/``aud`` are checked when configured.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

import jwt

from .config import Settings
from .errors import Unauthorized

ROLES = frozenset({"client", "worker", "moderator", "dispute", "admin", "service"})
LOCALES = ("ja", "en")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is calling, from a verified token."""

    user_id: str
    roles: frozenset[str]
    name: str
    locale: str
    tz: str
    exp: float

    def has(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    @property
    def is_staff(self) -> bool:
        return self.has("moderator", "dispute", "admin")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "roles": sorted(self.roles),
            "name": self.name,
            "locale": self.locale,
            "tz": self.tz,
            "exp": int(self.exp),
        }


class TokenVerifier:
    """Verifies tokens with the configured key and policy. Thread-safe, no I/O."""

    def __init__(self, settings: Settings) -> None:
        self._algorithms = list(settings.jwt_algorithms)
        self._secret = str(settings.jwt_secret)
        self._public = str(settings.jwt_public_key)
        self._issuer = settings.jwt_issuer or None
        self._audience = settings.jwt_audience or None
        self._leeway = settings.jwt_leeway_s

    def _key_for(self, alg: str) -> str:
        if alg == "HS256":
            if not self._secret:
                raise Unauthorized("HS256 tokens are not accepted: no secret configured")
            return self._secret
        if not self._public:
            raise Unauthorized(f"{alg} tokens are not accepted: no public key configured")
        return self._public

    def verify(self, token: str) -> Identity:
        """Return the token's identity, or raise :class:`Unauthorized` saying why."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("missing token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise Unauthorized(f"algorithm {alg!r} is not allowed")
        try:
            claims = jwt.decode(
                token,
                self._key_for(alg),
                algorithms=[alg],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        return _identity(claims)


def _identity(claims: dict[str, Any]) -> Identity:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise Unauthorized("claim 'sub' must be a non-empty string of at most 128 characters")
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("claim 'roles' must be a list of strings")
    unknown = set(roles) - ROLES
    if unknown:
        raise Unauthorized(f"unknown role(s): {', '.join(sorted(unknown))}")
    locale = claims.get("locale", "ja")
    if locale not in LOCALES:
        locale = "en" if str(locale).startswith("en") else "ja"
    name = claims.get("name", sub)
    tz = claims.get("tz", "Asia/Tokyo")
    return Identity(
        user_id=sub,
        roles=_role_set(roles),
        name=str(name)[:100],
        locale=sys.intern(locale),
        tz=sys.intern(str(tz)[:64]),
        exp=float(claims["exp"]),
    )


_ROLE_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def _role_set(roles: list[str]) -> frozenset[str]:
    """One shared frozenset per combination of (known) roles: a connection holds its
    identity for its whole life, and an empty frozenset alone is 216 bytes."""
    key = tuple(sorted(set(roles)))
    found = _ROLE_SETS.get(key)
    if found is None:
        found = _ROLE_SETS[key] = frozenset(key)
    return found


def mint_token(
    settings: Settings,
    sub: str,
    roles: list[str],
    *,
    name: str | None = None,
    locale: str = "ja",
    tz: str = "Asia/Tokyo",
    ttl: float = 3600.0,
) -> str:
    """Sign an HS256 token with the configured secret (development, tests and the demo)."""
    if not settings.jwt_secret:
        raise Unauthorized("no TSUNAGU_JWT_SECRET to sign with")
    now = time.time()
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": roles,
        "name": name or sub,
        "locale": locale,
        "tz": tz,
        "iat": int(now),
        "exp": int(now + ttl),
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, str(settings.jwt_secret), algorithm="HS256")
