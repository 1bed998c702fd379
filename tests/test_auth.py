"""Token verification: HS256, RS256 and EdDSA, the allowlist, exp, iss/aud, roles."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from chat.auth import Identity, TokenVerifier, mint_token
from chat.config import Secret, Settings, load_settings
from chat.errors import Unauthorized

SECRET = "k" * 48


def hs_settings(**kw: Any) -> Settings:
    return replace(load_settings(env={}), jwt_secret=Secret(SECRET), **kw)


def claims(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sub": "alice", "roles": ["client"], "exp": int(time.time()) + 600}
    out.update(kw)
    return {k: v for k, v in out.items() if v is not None}


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as info:
        verifier.verify(token)
    assert info.value.code == "unauthorized"
    return info.value.message


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


@pytest.fixture(scope="module")
def ed_keys() -> tuple[bytes, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public.decode()


def test_hs256_token_gives_identity() -> None:
    s = hs_settings()
    exp = int(time.time()) + 600
    token = jwt.encode(claims(roles=["worker", "service"], name="山田", locale="en",
                              tz="Europe/Paris", exp=exp), SECRET, algorithm="HS256")
    ident = TokenVerifier(s).verify(token)
    assert ident == Identity("alice", frozenset({"worker", "service"}), "山田", "en",
                             "Europe/Paris", float(exp))
    assert ident.has("service") and not ident.has("admin") and not ident.is_staff
    assert ident.to_json() == {"id": "alice", "roles": ["service", "worker"], "name": "山田",
                               "locale": "en", "tz": "Europe/Paris", "exp": exp}


def test_identity_defaults_and_locale_fallback() -> None:
    v = TokenVerifier(hs_settings())
    ident = v.verify(jwt.encode(claims(roles=None), SECRET, algorithm="HS256"))
    assert (ident.roles, ident.name, ident.locale, ident.tz) == (
        frozenset(), "alice", "ja", "Asia/Tokyo")
    assert v.verify(jwt.encode(claims(locale="en-US"), SECRET, algorithm="HS256")).locale == "en"
    assert v.verify(jwt.encode(claims(locale="fr"), SECRET, algorithm="HS256")).locale == "ja"
    assert v.verify(jwt.encode(claims(roles="moderator"), SECRET, algorithm="HS256")).is_staff


def test_mint_token_round_trips() -> None:
    s = hs_settings(jwt_issuer="platform", jwt_audience="tsunagu")
    ident = TokenVerifier(s).verify(mint_token(s, "bob", ["worker"], name="Bob", ttl=60))
    assert ident.user_id == "bob" and ident.roles == {"worker"} and ident.name == "Bob"
    assert time.time() < ident.exp <= time.time() + 61
    with pytest.raises(Unauthorized):
        mint_token(load_settings(env={}), "bob", ["worker"])


def test_wrong_secret_and_garbage_are_refused() -> None:
    v = TokenVerifier(hs_settings())
    assert "invalid token" in refused(v, jwt.encode(claims(), "x" * 48, algorithm="HS256"))
    assert refused(v, "not.a.token")
    assert refused(v, "")
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    head, _body, sig = good.split(".")
    forged = base64.urlsafe_b64encode(orjson.dumps(claims(sub="mallory"))).rstrip(b"=").decode()
    assert refused(v, f"{head}.{forged}.{sig}")


def test_rs256_with_public_key(rsa_keys: tuple[bytes, str]) -> None:
    private, public = rsa_keys
    s = replace(load_settings(env={}), jwt_algorithms=("RS256",), jwt_public_key=Secret(public))
    v = TokenVerifier(s)
    assert v.verify(jwt.encode(claims(), private, algorithm="RS256")).user_id == "alice"
    # HS256 is not in the allowlist, whatever it is signed with
    assert "not allowed" in refused(v, jwt.encode(claims(), SECRET, algorithm="HS256"))


def test_eddsa_with_public_key(ed_keys: tuple[bytes, str]) -> None:
    private, public = ed_keys
    s = replace(load_settings(env={}), jwt_algorithms=("EdDSA",), jwt_public_key=Secret(public))
    v = TokenVerifier(s)
    assert v.verify(jwt.encode(claims(), private, algorithm="EdDSA")).user_id == "alice"
    other = ed25519.Ed25519PrivateKey.generate()
    assert "invalid token" in refused(v, jwt.encode(claims(), other, algorithm="EdDSA"))


def test_algorithm_confusion_is_refused(rsa_keys: tuple[bytes, str]) -> None:
    """An HS256 token signed with the (public) RSA key as the HMAC secret."""
    private, public = rsa_keys
    both = replace(load_settings(env={}), jwt_algorithms=("HS256", "RS256"),
                   jwt_secret=Secret(SECRET), jwt_public_key=Secret(public))
    v = TokenVerifier(both)
    assert v.verify(jwt.encode(claims(), private, algorithm="RS256")).user_id == "alice"
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(orjson.dumps(claims())).rstrip(b"=")
    import hashlib
    import hmac

    signing_input = header + b"." + payload
    mac = hmac.new(public.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    assert "invalid token" in refused(v, forged)
    rs_only = TokenVerifier(replace(both, jwt_algorithms=("RS256",)))
    assert "not allowed" in refused(rs_only, forged)


def test_alg_none_is_refused() -> None:
    v = TokenVerifier(hs_settings())
    unsigned = jwt.encode(claims(), None, algorithm="none")
    assert "not allowed" in refused(v, unsigned)
    header = base64.urlsafe_b64encode(b'{"alg":"HS512"}').rstrip(b"=").decode()
    assert "not allowed" in refused(v, header + ".e30.")


def test_exp_is_required_and_checked() -> None:
    v = TokenVerifier(hs_settings())
    assert "exp" in refused(v, jwt.encode(claims(exp=None), SECRET, algorithm="HS256"))
    expired = jwt.encode(claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert refused(v, expired) == "token expired"
    lenient = TokenVerifier(hs_settings(jwt_leeway_s=60))
    assert lenient.verify(expired).user_id == "alice"
    assert "sub" in refused(v, jwt.encode(claims(sub=None), SECRET, algorithm="HS256"))


def test_issuer_and_audience_checked_only_when_configured() -> None:
    tok = jwt.encode(claims(iss="someone", aud="anyone"), SECRET, algorithm="HS256")
    assert TokenVerifier(hs_settings()).verify(tok).user_id == "alice"
    strict = TokenVerifier(hs_settings(jwt_issuer="platform", jwt_audience="tsunagu"))
    assert refused(strict, tok)
    assert refused(strict, jwt.encode(claims(aud="tsunagu"), SECRET, algorithm="HS256"))
    assert refused(strict, jwt.encode(claims(iss="platform"), SECRET, algorithm="HS256"))
    assert refused(strict, jwt.encode(claims(iss="platform", aud="other"), SECRET,
                                      algorithm="HS256"))
    ok = jwt.encode(claims(iss="platform", aud=["x", "tsunagu"]), SECRET, algorithm="HS256")
    assert strict.verify(ok).user_id == "alice"


@pytest.mark.parametrize("roles", [["root"], ["client", "god"], [1], {"a": 1}, 5])
def test_bad_roles_are_refused(roles: Any) -> None:
    v = TokenVerifier(hs_settings())
    assert "role" in refused(v, jwt.encode(claims(roles=roles), SECRET, algorithm="HS256"))


@pytest.mark.parametrize("sub", ["", 5, "x" * 129])
def test_bad_subject_is_refused(sub: Any) -> None:
    v = TokenVerifier(hs_settings())
    tok = jwt.encode(claims(sub=sub), SECRET, algorithm="HS256") if not isinstance(sub, int) \
        else _unchecked(claims(sub=sub))
    assert refused(v, tok)


def _unchecked(payload: dict[str, Any]) -> str:
    """HS256-sign a payload PyJWT would refuse to encode (e.g. a non-string sub)."""
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(orjson.dumps(payload)).rstrip(b"=")
    mac = hmac.new(SECRET.encode(), header + b"." + body, hashlib.sha256).digest()
    return (header + b"." + body + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def test_hs256_without_secret_is_refused(rsa_keys: tuple[bytes, str]) -> None:
    _, public = rsa_keys
    s = replace(load_settings(env={}), jwt_algorithms=("HS256", "RS256"),
                jwt_public_key=Secret(public))
    assert "no secret" in refused(TokenVerifier(s), _unchecked(claims()))
