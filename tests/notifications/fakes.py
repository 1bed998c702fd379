"""Local servers that speak the push services' wire formats, for end-to-end channel tests.

* :class:`PushService` - a Web Push endpoint (RFC 8030): checks the VAPID JWT (RFC 8292)
  against the ``k=`` key, decrypts the aes128gcm body (RFC 8291) with the subscription's
  private key and auth secret.
* :class:`FcmServer` - the OAuth2 token endpoint (JWT bearer grant) and FCM HTTP v1
  ``messages:send``.
* :class:`ApnsServer` - the APNs provider API over HTTP/2 and TLS (self-signed), checking the
  ES256 provider token.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import secrets
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import http_ece
import jwt
import orjson
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ec_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


async def serve(app: web.Application, ssl_context: ssl.SSLContext | None = None
                ) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    assert site._server is not None
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


class Browser:
    """One browser's push subscription keys (the user agent side of RFC 8291)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = secrets.token_bytes(16)

    def keys(self) -> dict[str, str]:
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return {"p256dh": b64u(point), "auth": b64u(self.auth)}


class PushService:
    def __init__(self, vapid_public_key: str, subject: str) -> None:
        self.vapid_public_key = vapid_public_key
        self.subject = subject
        self.browsers: dict[str, Browser] = {}
        self.received: list[dict[str, Any]] = []
        self.status: dict[str, list[int]] = {}  # scripted answers per subscription id
        self.headers: dict[str, dict[str, str]] = {}  # headers of the scripted answers
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> PushService:
        app = web.Application()
        app.router.add_post("/push/{sid}", self.handle)
        self.runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def subscribe(self, sid: str) -> dict[str, Any]:
        self.browsers[sid] = Browser()
        return {"endpoint": f"http://127.0.0.1:{self.port}/push/{sid}",
                "keys": self.browsers[sid].keys()}

    async def handle(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        scripted = self.status.get(sid)
        if scripted:
            code = scripted.pop(0)
            if code != 201:
                return web.Response(status=code, text="scripted",
                                    headers=self.headers.get(sid, {}))
        auth = request.headers.get("Authorization", "")
        assert auth.startswith("vapid "), auth
        parts = dict(p.strip().split("=", 1) for p in auth[len("vapid "):].split(","))
        assert parts["k"] == self.vapid_public_key, "VAPID key is not the server's key"
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64u(parts["k"]))
        claims = jwt.decode(parts["t"], pub, algorithms=["ES256"],
                            audience=f"http://127.0.0.1:{self.port}")
        assert claims["sub"] == self.subject
        assert request.headers["Content-Encoding"] == "aes128gcm"
        browser = self.browsers[sid]
        plain = http_ece.decrypt(await request.read(), private_key=browser.key,
                                 auth_secret=browser.auth, version="aes128gcm")
        self.received.append({"sid": sid, "payload": orjson.loads(plain),
                              "topic": request.headers.get("Topic"),
                              "urgency": request.headers.get("Urgency"),
                              "ttl": request.headers.get("TTL")})
        return web.Response(status=201)


class FcmServer:
    def __init__(self, tmp: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.tmp = tmp
        self.tokens: set[str] = set()
        self.sent: list[dict[str, Any]] = []
        self.gone: set[str] = set()
        # scripted answers, one per send: (status, headers, JSON body)
        self.script: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> FcmServer:
        app = web.Application()
        app.router.add_post("/token", self.token)
        app.router.add_post("/v1/projects/{project}/messages:send", self.send)
        self.runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def credentials_file(self) -> str:
        path = self.tmp / "fcm-service-account.json"
        path.write_bytes(orjson.dumps({
            "type": "service_account", "project_id": "tsunagu-test",
            "private_key_id": "kid1", "client_email": "push@tsunagu-test.iam.example",
            "token_uri": f"http://127.0.0.1:{self.port}/token",
            "private_key": self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode()}))
        return str(path)

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        claims = jwt.decode(str(form["assertion"]), self.key.public_key(), algorithms=["RS256"],
                            audience=f"http://127.0.0.1:{self.port}/token")
        assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
        token = secrets.token_hex(8)
        self.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": 3600,
                                  "token_type": "Bearer"})

    async def send(self, request: web.Request) -> web.Response:
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.tokens:
            return web.json_response({"error": {"code": 401, "status": "UNAUTHENTICATED"}},
                                     status=401)
        doc = await request.json()
        msg = doc["message"]
        if self.script:
            status, headers, body = self.script.pop(0)
            return web.json_response(body, status=status, headers=headers)
        if msg["token"] in self.gone:
            return web.json_response({"error": {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "UNREGISTERED"}]}}, status=404)
        self.sent.append({"project": request.match_info["project"], **msg})
        return web.json_response(
            {"name": f"projects/{request.match_info['project']}/messages/{len(self.sent)}"})


class ApnsServer:
    """An HTTP/2 server over TLS (h2 library) that answers like APNs."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.auth_key = ec.generate_private_key(ec.SECP256R1())
        self.team_id, self.key_id, self.topic = "TEAM123456", "KEY1234567", "jp.tsunagu.app"
        self.gone: set[str] = set()
        self.received: list[dict[str, Any]] = []
        # scripted answers, one per request: (status, extra headers, body)
        self.script: list[tuple[int, dict[str, str], bytes]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.cert_file = ""

    def key_file(self) -> str:
        path = self.tmp / "apns-key.p8"
        path.write_text(ec_pem(self.auth_key))
        return str(path)

    def _tls(self) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        import ipaddress

        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .sign(key, hashes.SHA256()))
        self.cert_file = str(self.tmp / "apns-cert.pem")
        key_file = str(self.tmp / "apns-tls-key.pem")
        Path(self.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        Path(key_file).write_text(ec_pem(key))
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_file, key_file)
        ctx.set_alpn_protocols(["h2"])
        return ctx

    async def start(self) -> ApnsServer:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, ssl=self._tls())
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import h2.config
        import h2.connection
        import h2.events

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        streams: dict[int, dict[str, Any]] = {}
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {
                            "headers": {k.decode() if isinstance(k, bytes) else k:
                                        v.decode() if isinstance(v, bytes) else v
                                        for k, v in ev.headers}, "body": b""}
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        req = streams.pop(ev.stream_id)
                        extra: dict[str, str] = {}
                        if self.script:
                            status, extra, body = self.script.pop(0)
                        else:
                            status, body = self._answer(req)
                        conn.send_headers(ev.stream_id, [
                            (":status", str(status)), ("apns-id", secrets.token_hex(8)),
                            ("content-length", str(len(body))),
                            *((k.lower(), v) for k, v in extra.items())],
                            end_stream=not body)
                        if body:
                            conn.send_data(ev.stream_id, body, end_stream=True)
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _answer(self, req: dict[str, Any]) -> tuple[int, bytes]:
        h = req["headers"]
        assert h[":method"] == "POST" and h[":path"].startswith("/3/device/")
        token = h[":path"].rsplit("/", 1)[1]
        bearer = h.get("authorization", "").removeprefix("bearer ")
        try:
            header = jwt.get_unverified_header(bearer)
            claims = jwt.decode(bearer, self.auth_key.public_key(), algorithms=["ES256"])
        except jwt.PyJWTError:
            return 403, b'{"reason":"InvalidProviderToken"}'
        if header.get("kid") != self.key_id or claims.get("iss") != self.team_id:
            return 403, b'{"reason":"InvalidProviderToken"}'
        if h.get("apns-topic") != self.topic:
            return 400, b'{"reason":"TopicDisallowed"}'
        if token in self.gone:
            return 410, b'{"reason":"Unregistered","timestamp":1}'
        self.received.append({"token": token, "headers": h,
                               "payload": orjson.loads(req["body"])})
        return 200, b""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


Hook = Callable[..., Any]
_ = os
