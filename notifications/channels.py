"""Push and e-mail senders: Web Push (VAPID + RFC 8291), FCM HTTP v1, APNs HTTP/2, SMTP.

Each sender turns one :class:`Outgoing` into one request and classifies the answer as a
:class:`Result`: sent, gone (the subscription or token no longer exists: remove it), retry
(network error, 429, 5xx) or permanent failure. Collapse keys keep a newer reminder from
piling up behind an older one: Web Push ``Topic``, FCM ``collapse_key``, APNs
``apns-collapse-id``, e-mail ``Message-ID``.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlencode, urlparse, urlsplit

import aiohttp
import jwt
import orjson

from chat.config import Settings

MAX_WEBPUSH_PLAINTEXT = 3993  # the largest payload that fits one aes128gcm record


@dataclass(frozen=True, slots=True)
class Outgoing:
    delivery_id: str
    notice_id: str
    user: str
    kind: str
    category: str
    thread: str
    title: str
    body: str
    urgent: bool
    target: str  # endpoint, device token or e-mail address
    locale: str
    keys: dict[str, str] | None = None  # Web Push p256dh/auth

    @property
    def collapse(self) -> str:
        """A short stable key per (kind, thread): a newer notice replaces an older one."""
        return hashlib.sha256(f"{self.kind}:{self.thread}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    detail: str
    gone: bool = False
    retry: bool = False
    retry_after_s: float | None = None  # the service's Retry-After, when it sent one


SENT = Result(True, "sent")


class Sender(Protocol):
    async def send(self, out: Outgoing) -> Result: ...

    async def close(self) -> None: ...


def retry_after_s(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    v = value.strip()
    if v.isascii() and v.isdigit():
        return float(int(v[:12]))
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


def _classify(status: int, text: str, headers: Mapping[str, str] | None = None) -> Result:
    if status in (200, 201, 202, 204):
        return Result(True, f"sent ({status})")
    if status in (404, 410):
        return Result(False, f"gone ({status}) {text[:200]}", gone=True)
    if status == 429 or status >= 500:
        after = retry_after_s((headers or {}).get("Retry-After"))
        detail = f"http {status} {text[:200]}"
        if after is not None:
            detail += f" (Retry-After {after:.0f} s)"
        return Result(False, detail, retry=True, retry_after_s=after)
    return Result(False, f"http {status} {text[:200]}")


# --- Web Push
def push_endpoint_error(endpoint: str, settings: Settings) -> str | None:
    """Why ``endpoint`` may not be used as a Web Push endpoint, or None if it may.

    The server POSTs to every registered endpoint: an arbitrary URL would let any user make
    it send requests to internal services (SSRF). Endpoints must be ``https://`` URLs (or
    ``http://`` with ``notify_insecure_push``, for tests) whose host is one of
    ``notify_push_hosts`` — by default the browsers' push services.
    """
    try:
        url = urlsplit(endpoint)
        host = (url.hostname or "").lower()
        url.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "endpoint is not a valid URL"
    if url.scheme != "https" and not (settings.notify_insecure_push and url.scheme == "http"):
        return "endpoint must be an https URL"
    if not host or url.username is not None or url.password is not None:
        return "endpoint must be a URL with a host and no user name or password"
    for allowed in settings.notify_push_hosts:
        if allowed == "*" or host == allowed or (
                allowed.startswith("*.") and host.endswith(allowed[1:])):
            return None
    return (f"endpoint host {host!r} is not a known push service "
            "(TSUNAGU_NOTIFY_PUSH_HOSTS lists the allowed ones)")


class WebPushSender:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        from py_vapid import Vapid02

        raw = str(settings.vapid_private_key).strip()
        if raw.startswith("-----BEGIN"):
            self.vapid = Vapid02.from_pem(raw.encode())
        else:
            self.vapid = Vapid02.from_raw(raw.encode())
        self.subject = settings.vapid_subject
        self.settings = settings
        self.session = session
        self.timeout = settings.notify_send_timeout_s

    @property
    def public_key(self) -> str:
        """The application server key for ``PushManager.subscribe`` (base64url, raw point)."""
        import base64

        from cryptography.hazmat.primitives import serialization

        point = self.vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        return base64.urlsafe_b64encode(point).rstrip(b"=").decode()

    async def send(self, out: Outgoing) -> Result:
        from pywebpush import WebPusher

        assert out.keys is not None
        refused = push_endpoint_error(out.target, self.settings)
        if refused is not None:  # registered before the allowlist changed: never POSTed to
            return Result(False, refused, gone=True)
        url = urlparse(out.target)
        claims: dict[str, str | int] = {"sub": self.subject, "aud": f"{url.scheme}://{url.netloc}",
                                        "exp": int(time.time()) + 12 * 3600}
        headers = dict(self.vapid.sign(claims))
        headers["Topic"] = out.collapse
        headers["Urgency"] = "high" if out.urgent else "normal"
        payload = {"id": out.notice_id, "kind": out.kind, "thread": out.thread,
                   "title": out.title, "body": out.body}
        data = orjson.dumps(payload)
        if len(data) > MAX_WEBPUSH_PLAINTEXT:
            payload["body"] = out.body[: max(0, len(out.body) - (len(data) - 3900) // 3 - 1)]
            data = orjson.dumps(payload)
        sub = {"endpoint": out.target, "keys": out.keys}
        try:
            resp = await WebPusher(sub, aiohttp_session=self.session).send_async(
                data.decode(), headers, ttl=86400, content_encoding="aes128gcm",
                timeout=self.timeout)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Result(False, f"network: {exc.__class__.__name__}: {exc}", retry=True)
        assert not isinstance(resp, str)
        return _classify(resp.status, await resp.text(), resp.headers)

    async def close(self) -> None:
        pass


# --- FCM HTTP v1
class FcmSender:
    """FCM HTTP v1 with a service account: an OAuth2 token from a signed JWT (RFC 7523)."""

    SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        with open(settings.fcm_credentials_file, encoding="utf-8") as fh:
            self.account = orjson.loads(fh.read())
        self.project = settings.fcm_project_id
        self.endpoint = settings.fcm_endpoint.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=settings.notify_send_timeout_s)
        self._token: str | None = None
        self._token_exp = 0.0
        self._lock = asyncio.Lock()

    async def _access_token(self, *, refresh: bool = False) -> str:
        async with self._lock:
            if self._token and not refresh and time.time() < self._token_exp - 60:
                return self._token
            now = int(time.time())
            assertion = jwt.encode(
                {"iss": self.account["client_email"], "scope": self.SCOPE,
                 "aud": self.account["token_uri"], "iat": now, "exp": now + 3600},
                self.account["private_key"], algorithm="RS256",
                headers={"kid": self.account.get("private_key_id", "")})
            async with self.session.post(self.account["token_uri"], data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion}, timeout=self.timeout) as r:
                doc = await r.json(content_type=None)
                if r.status != 200:
                    raise aiohttp.ClientError(f"token endpoint answered {r.status}: {doc}")
            self._token = str(doc["access_token"])
            self._token_exp = time.time() + float(doc.get("expires_in", 3600))
            return self._token

    async def send(self, out: Outgoing) -> Result:
        message = {"message": {
            "token": out.target,
            "notification": {"title": out.title, "body": out.body},
            "data": {"notice": out.notice_id, "kind": out.kind, "thread": out.thread},
            "android": {"collapse_key": out.collapse,
                        "priority": "HIGH" if out.urgent else "NORMAL"},
            "apns": {"headers": {"apns-collapse-id": out.collapse}},
        }}
        url = f"{self.endpoint}/v1/projects/{self.project}/messages:send"
        try:
            for attempt in (1, 2):
                token = await self._access_token(refresh=attempt == 2)
                async with self.session.post(url, json=message, timeout=self.timeout, headers={
                        "Authorization": f"Bearer {token}"}) as r:
                    text = await r.text()
                    if r.status == 401 and attempt == 1:
                        continue
                    # the token is gone, or belongs to another sender (another app or
                    # project): either way it will never work for us
                    if r.status == 404 or (r.status == 400 and "UNREGISTERED" in text) or (
                            r.status == 403 and "SENDER_ID_MISMATCH" in text):
                        return Result(False, f"gone ({r.status}) {text[:200]}", gone=True)
                    return _classify(r.status, text, r.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Result(False, f"network: {exc.__class__.__name__}: {exc}", retry=True)
        return Result(False, "unauthorized twice", retry=True)

    async def close(self) -> None:
        pass


# --- APNs over HTTP/2
class ApnsSender:
    """APNs provider API: HTTP/2, token (ES256 JWT) authentication, refreshed every 50 min."""

    REFRESH_S = 50 * 60

    def __init__(self, settings: Settings) -> None:
        import httpx

        with open(settings.apns_key_file, encoding="utf-8") as fh:
            self.key = fh.read()
        self.key_id = settings.apns_key_id
        self.team_id = settings.apns_team_id
        self.topic = settings.apns_topic
        self.endpoint = settings.apns_endpoint.rstrip("/")
        verify: Any = settings.apns_ca_file or True
        if settings.apns_ca_file:
            import ssl

            verify = ssl.create_default_context(cafile=settings.apns_ca_file)
        self.client = httpx.AsyncClient(http2=True, verify=verify,
                                        timeout=settings.notify_send_timeout_s)
        self._jwt = ""
        self._jwt_at = 0.0

    def _token(self, *, refresh: bool = False) -> str:
        if refresh or not self._jwt or time.time() - self._jwt_at > self.REFRESH_S:
            self._jwt_at = time.time()
            self._jwt = jwt.encode({"iss": self.team_id, "iat": int(self._jwt_at)}, self.key,
                                   algorithm="ES256", headers={"kid": self.key_id})
        return self._jwt

    async def send(self, out: Outgoing) -> Result:
        import httpx

        body = orjson.dumps({
            "aps": {"alert": {"title": out.title, "body": out.body}, "sound": "default",
                    "thread-id": out.thread},
            "notice": out.notice_id, "kind": out.kind, "thread": out.thread})
        try:
            for attempt in (1, 2):
                r = await self.client.post(
                    f"{self.endpoint}/3/device/{out.target}", content=body, headers={
                        "authorization": f"bearer {self._token(refresh=attempt == 2)}",
                        "apns-topic": self.topic, "apns-push-type": "alert",
                        "apns-priority": "10" if out.urgent else "5",
                        "apns-collapse-id": out.collapse,
                        "apns-expiration": str(int(time.time()) + 86400)})
                if r.status_code == 403 and "ExpiredProviderToken" in r.text and attempt == 1:
                    continue
                if r.status_code == 400 and ("BadDeviceToken" in r.text or
                                             "DeviceTokenNotForTopic" in r.text):
                    return Result(False, f"gone (400) {r.text[:200]}", gone=True)
                if r.status_code == 200:
                    return Result(True, f"sent (apns-id {r.headers.get('apns-id', '')})")
                return _classify(r.status_code, r.text, r.headers)
        except (httpx.HTTPError, OSError) as exc:
            return Result(False, f"network: {exc.__class__.__name__}: {exc}", retry=True)
        return Result(False, "provider token refused twice", retry=True)

    async def close(self) -> None:
        await self.client.aclose()


# --- e-mail
def link_key(settings: Settings) -> bytes | None:
    """The key of signed e-mail links: ``notify_link_secret``, else one derived from the
    HS256 token key (never the key itself). None when neither is set: links are refused."""
    if settings.notify_link_secret:
        return str(settings.notify_link_secret).encode()
    if settings.jwt_secret:
        return hmac.new(str(settings.jwt_secret).encode(), b"tsunagu/unsubscribe-link/v1",
                        hashlib.sha256).digest()
    return None


def unsubscribe_sig(key: bytes, user: str, category: str) -> str:
    return hmac.new(key, f"unsub:{user}:{category}".encode(), hashlib.sha256).hexdigest()[:32]


class _MailPolicy(email.policy.EmailPolicy):
    """The SMTP policy (CRLF, 78 columns) with two exceptions. ``List-Unsubscribe`` stays on
    one line (up to RFC 5322's 998): folded, it would become RFC 2047 encoded words, and mail
    clients read it as a literal ``<URL>``. A non-ASCII ``Subject`` is encoded as RFC 2047
    words of at most 75 characters (the default folder makes 76-character words)."""

    def fold(self, name: str, value: Any) -> str:
        folded = self._special(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._special(name, value)
        return folded.encode("ascii") if folded is not None else \
            super().fold_binary(name, value)

    def _special(self, name: str, value: Any) -> str | None:
        from email.header import Header

        low, text = name.lower(), str(value)
        if low in ("list-unsubscribe", "list-unsubscribe-post") and text.isascii() and \
                len(name) + len(text) < 990:
            return f"{name}: {text}{self.linesep}"
        if low == "subject" and not text.isascii():
            words = Header(text, "utf-8", maxlinelen=76, header_name=name).encode(
                linesep=self.linesep)
            return f"{name}: {words}{self.linesep}"
        return None


MAIL_POLICY = _MailPolicy(linesep="\r\n")


class EmailSender:
    def __init__(self, settings: Settings, *, base_url: str) -> None:
        self.s = settings
        self.base_url = base_url.rstrip("/")
        key = link_key(settings)
        if key is None:  # refused at start-up by the configuration check
            raise ValueError("e-mail needs TSUNAGU_NOTIFY_LINK_SECRET or TSUNAGU_JWT_SECRET")
        self.key = key

    def unsubscribe_url(self, user: str, category: str) -> str:
        query = urlencode({"u": user, "c": category,
                           "s": unsubscribe_sig(self.key, user, category)})
        return f"{self.base_url}/v1/notifications/unsubscribe?{query}"

    def message(self, out: Outgoing) -> EmailMessage:
        from .texts import EMAIL_FOOTER

        link = self.unsubscribe_url(out.user, out.category)
        msg = EmailMessage(policy=MAIL_POLICY)
        msg["From"] = self.s.smtp_from
        msg["To"] = out.target
        msg["Subject"] = " ".join(out.title.split())  # no CR/LF in a header
        msg["Date"] = email.utils.formatdate(usegmt=True)
        domain = self.s.smtp_from.rsplit("@", 1)[-1].strip("> ") or "tsunagu"
        msg["Message-ID"] = f"<{out.notice_id}.{out.delivery_id}@{domain}>"
        msg["List-Unsubscribe"] = f"<{link}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["Content-Language"] = out.locale
        footer = EMAIL_FOOTER.get(out.locale, EMAIL_FOOTER["ja"]).format(unsubscribe=link)
        msg.set_content(f"{out.body}\n\n--\n{footer}\n")
        return msg

    async def send(self, out: Outgoing) -> Result:
        import aiosmtplib

        s = self.s
        msg = self.message(out)
        # Flattened here with our policy: aiosmtplib would re-flatten with a 78-column one.
        raw = msg.as_bytes(policy=msg.policy)
        sender = email.utils.parseaddr(s.smtp_from)[1]
        try:
            await aiosmtplib.send(
                raw, sender=sender, recipients=[out.target], hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_user or None, password=str(s.smtp_password) or None,
                use_tls=s.smtp_tls == "tls", start_tls=s.smtp_tls == "starttls",
                timeout=s.notify_send_timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            # 4xx (mailbox busy, greylisting, over quota for now) is worth another try
            codes = [r.code for r in exc.recipients]
            transient = bool(codes) and all(400 <= c < 500 for c in codes)
            return Result(False, f"refused: {exc}", retry=transient)
        except aiosmtplib.SMTPResponseException as exc:
            return Result(False, f"smtp {exc.code}: {exc.message}", retry=exc.code < 500)
        except (aiosmtplib.SMTPException, TimeoutError, OSError) as exc:
            return Result(False, f"smtp: {exc.__class__.__name__}: {exc}", retry=True)
        return SENT

    async def close(self) -> None:
        pass
