"""Settings, read once at start-up from ``TSUNAGU_*`` variables and an optional TOML file.

Nothing below this module reads ``os.environ``: :func:`load_settings` builds one frozen
:class:`Settings` and the application passes it down. Every field is documented in
``docs/configuration.md``; a bad value raises :class:`ConfigError` whose message is one line
naming the setting.

Precedence: built-in default < TOML file (``TSUNAGU_CONFIG`` or ``--config``) < environment.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

log = logging.getLogger("tsunagu.config")

ALGORITHMS = ("HS256", "RS256", "EdDSA")
# ``TSUNAGU_*`` variables that are not settings: tools read them themselves, so
# :func:`load_settings` lets them through (any other unknown ``TSUNAGU_*`` is a typo). Each is
# described in docs/configuration.md (scripts/gen_config_doc.py fails on one it cannot name).
TOOL_VARIABLES = frozenset({
    "TSUNAGU_MODERATION_DEVSET",  # moderation/score.py: the labelled dev set to score against
})
# Prefixes of the test suite's and the benchmarks' own variables.
TOOL_PREFIXES = ("TSUNAGU_TEST_", "TSUNAGU_BENCH_")
_PUSH_HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


class ConfigError(Exception):
    """A setting has a bad value. ``str(exc)`` is one line that names it."""


class Secret(str):
    """A string that does not print itself (tokens keys in logs and reprs)."""

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class Settings:
    # --- running
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./data"
    database_url: str = ""  # empty: sqlite:///<data_dir>/tsunagu.db
    redis_url: str = ""  # empty: in-process fan-out (one node)
    redis_prefix: str = "tsunagu"
    node_id: str = ""  # empty: random per process
    log_level: str = "INFO"
    pg_pool_min: int = 2
    pg_pool_max: int = 10
    # --- tokens
    jwt_secret: Secret = Secret("")  # noqa: RUF009 - immutable str subclass
    jwt_public_key: Secret = Secret("")  # noqa: RUF009
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_leeway_s: float = 0.0
    allowed_origins: tuple[str, ...] = ()  # empty: same-origin and non-browser clients only
    # --- limits
    max_frame_bytes: int = 65536
    max_body_chars: int = 10000
    max_title_chars: int = 200
    rate_per_s: float = 10.0
    rate_burst: int = 30
    max_connections_per_user: int = 16
    hello_rate_per_s: float = 2.0  # sockets a user may open per second (a reconnect storm)
    hello_rate_burst: int = 30
    outbound_queue_depth: int = 1024
    hello_timeout_s: float = 10.0
    heartbeat_s: float = 25.0
    close_timeout_s: float = 5.0  # a socket that cannot take its close frame is then aborted
    history_max_limit: int = 500
    max_participants: int = 100
    max_http_body_bytes: int = 1048576
    http_rate_per_s: float = 20.0
    http_rate_burst: int = 60
    # --- storage tuning
    group_commit_max: int = 512
    group_commit_linger_ms: float = 3.0
    group_commit_in_flight: int = 1
    gc_freeze: bool = True
    gc_young_threshold: int = 50_000
    sqlite_synchronous: str = "FULL"
    sqlite_checkpoint_interval_ms: float = 250.0
    drain_timeout_s: float = 10.0
    # --- moderation
    moderation_enabled: bool = True
    moderation_policy: str = ""  # empty: the packaged default policy
    moderation_allow_domains: tuple[str, ...] = ()
    moderation_allow_phrases: tuple[str, ...] = ()
    moderation_history: int = 12
    # --- notifications (docs/notifications.md)
    notify_enabled: bool = True
    notify_event_secret: Secret = Secret("")  # noqa: RUF009 - HMAC key for signed events
    notify_event_window_s: float = 300.0
    notify_deposit_reminder_h: float = 24.0
    notify_deadline_reminders_h: tuple[str, ...] = ("72", "24", "1")
    notify_review_reminder_d: float = 3.0
    notify_chat_digest_s: float = 60.0
    notify_default_tz: str = "Asia/Tokyo"
    notify_quiet_start: str = "22:00"
    notify_quiet_end: str = "08:00"
    notify_tick_s: float = 1.0
    notify_batch: int = 500
    notify_lease_s: float = 60.0
    notify_max_attempts: int = 8
    notify_retry_base_s: float = 2.0
    notify_retry_max_s: float = 600.0
    notify_send_timeout_s: float = 10.0
    notify_send_concurrency: int = 32
    notify_public_url: str = ""
    notify_insecure_push: bool = False  # accept http:// Web Push endpoints (tests, dev only)
    # Hosts that Web Push endpoints may name ("*.x" = any subdomain of x, "*" = any host): the
    # push services of Chrome/Edge/Opera/Samsung (FCM), Firefox, Windows and Safari.
    notify_push_hosts: tuple[str, ...] = ("fcm.googleapis.com", "*.push.services.mozilla.com",
                                          "*.notify.windows.com", "*.push.apple.com")
    vapid_private_key: Secret = Secret("")  # noqa: RUF009 - PEM or raw base64url P-256 key
    vapid_subject: str = ""
    smtp_host: str = ""  # empty: no email
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: Secret = Secret("")  # noqa: RUF009
    smtp_tls: str = "starttls"
    smtp_from: str = "tsunagu <noreply@localhost>"
    notify_link_secret: Secret = Secret("")  # noqa: RUF009 - key of signed e-mail links
    fcm_project_id: str = ""  # empty: no FCM
    fcm_credentials_file: str = ""
    fcm_endpoint: str = "https://fcm.googleapis.com"
    apns_key_file: str = ""  # empty: no APNs
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_endpoint: str = "https://api.push.apple.com"
    apns_ca_file: str = ""
    # --- evidence (docs/disputes.md)
    evidence_key_file: str = ""  # empty: <data_dir>/evidence-ed25519.pem (Ed25519, PEM)
    evidence_checkpoint_interval_s: float = 300.0
    evidence_retention_days: int = 2557  # content kept 7 years after a thread closes
    # --- demo
    demo: bool = False

    def __post_init__(self) -> None:
        _check(self)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.data_dir) / 'tsunagu.db'}"

    @property
    def is_embedded(self) -> bool:
        return self.effective_database_url.startswith("sqlite:")


def _check(s: Settings) -> None:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"TSUNAGU_{name.upper()}: {why}")

    if not 0 <= s.port <= 65535:
        raise bad("port", f"{s.port} is not a TCP port (0..65535)")
    url = s.effective_database_url
    if not (url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://"))):
        raise bad("database_url", f"{url!r} must start with sqlite:/// or postgresql://")
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise bad("redis_url", f"{s.redis_url!r} must start with redis://, rediss:// or unix://")
    for alg in s.jwt_algorithms:
        if alg not in ALGORITHMS:
            raise bad("jwt_algorithms", f"{alg!r} is not one of {', '.join(ALGORITHMS)}")
    if not s.jwt_algorithms:
        raise bad("jwt_algorithms", "at least one algorithm is required")
    if any(a != "HS256" for a in s.jwt_algorithms) and not s.jwt_public_key:
        raise bad("jwt_public_key", "RS256/EdDSA need a PEM public key")
    if s.jwt_secret and len(s.jwt_secret) < 32:
        raise bad("jwt_secret", "must be at least 32 characters")
    if s.sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise bad("sqlite_synchronous", f"{s.sqlite_synchronous!r} is not OFF, NORMAL, FULL or EXTRA")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise bad("log_level", f"{s.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
    positive = (
        "max_frame_bytes max_body_chars max_title_chars rate_burst max_connections_per_user "
        "outbound_queue_depth history_max_limit max_participants "
        "max_http_body_bytes group_commit_max group_commit_in_flight pg_pool_min pg_pool_max "
        "http_rate_burst evidence_retention_days gc_young_threshold hello_rate_burst"
    ).split()
    for name in positive:
        if getattr(s, name) <= 0:
            raise bad(name, f"must be positive, got {getattr(s, name)}")
    for name in ("rate_per_s", "http_rate_per_s", "hello_rate_per_s", "hello_timeout_s",
                 "heartbeat_s",
                 "drain_timeout_s", "close_timeout_s", "evidence_checkpoint_interval_s"):
        if getattr(s, name) <= 0:
            raise bad(name, f"must be positive, got {getattr(s, name)}")
    for name in ("jwt_leeway_s", "moderation_history", "group_commit_linger_ms",
                 "sqlite_checkpoint_interval_ms"):
        if getattr(s, name) < 0:
            raise bad(name, f"must not be negative, got {getattr(s, name)}")
    if s.pg_pool_min > s.pg_pool_max:
        raise bad("pg_pool_min", "must not exceed TSUNAGU_PG_POOL_MAX")
    if s.group_commit_in_flight >= s.pg_pool_max:
        raise bad("group_commit_in_flight", "must be below TSUNAGU_PG_POOL_MAX (a connection "
                  "must stay free for everything else)")
    _check_notify(s, bad)
    for host in s.notify_push_hosts:
        if host != "*" and not _PUSH_HOST.fullmatch(host):
            raise bad("notify_push_hosts", f"{host!r} is not a host name, '*.' and a host name, "
                      "or '*'")
    for origin in s.allowed_origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise bad("allowed_origins", f"{origin!r} must be '*' or start with http(s)://")


def _check_notify(s: Settings, bad: Any) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for name in ("notify_event_window_s", "notify_deposit_reminder_h", "notify_review_reminder_d",
                 "notify_chat_digest_s", "notify_tick_s", "notify_lease_s", "notify_retry_base_s",
                 "notify_retry_max_s", "notify_send_timeout_s", "notify_batch",
                 "notify_max_attempts", "notify_send_concurrency"):
        if getattr(s, name) <= 0:
            raise bad(name, f"must be positive, got {getattr(s, name)}")
    for h in s.notify_deadline_reminders_h:
        try:
            ok = float(h) > 0
        except ValueError:
            ok = False
        if not ok:
            raise bad("notify_deadline_reminders_h", f"{h!r} is not a positive number of hours")
    try:
        ZoneInfo(s.notify_default_tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad("notify_default_tz", f"{s.notify_default_tz!r} is not a time zone") from None
    for name in ("notify_quiet_start", "notify_quiet_end"):
        hh, _, mm = getattr(s, name).partition(":")
        if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            raise bad(name, f"{getattr(s, name)!r} is not HH:MM")
    if s.notify_link_secret and len(s.notify_link_secret) < 32:
        raise bad("notify_link_secret", "must be at least 32 characters")
    if s.smtp_host and not s.notify_link_secret and not s.jwt_secret and s.jwt_public_key:
        raise bad("notify_link_secret", "required when e-mail is on and tokens are verified "
                  "with a public key (unsubscribe links are signed with it)")
    if s.smtp_tls not in ("starttls", "tls", "none"):
        raise bad("smtp_tls", f"{s.smtp_tls!r} is not starttls, tls or none")
    if s.notify_event_secret and len(s.notify_event_secret) < 32:
        raise bad("notify_event_secret", "must be at least 32 characters")
    if s.vapid_private_key and not s.vapid_subject.startswith(("mailto:", "https://")):
        raise bad("vapid_subject", "must start with mailto: or https:// when VAPID is on")
    if s.fcm_project_id and not s.fcm_credentials_file:
        raise bad("fcm_credentials_file", "a service-account JSON file is required for FCM")
    if s.apns_key_file and not (s.apns_key_id and s.apns_team_id and s.apns_topic):
        raise bad("apns_key_file", "APNs needs TSUNAGU_APNS_KEY_ID, _TEAM_ID and _TOPIC too")


def _cast(name: str, raw: Any, default: Any) -> Any:
    """Cast a raw TOML or environment value to the type of the field's default."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"{raw!r} is not a boolean")
        if isinstance(raw, dict):
            raise ValueError("must not be a table")
        if isinstance(default, Secret):
            return Secret(str(raw))
        if isinstance(default, int):
            if isinstance(raw, bool | float | list):
                raise ValueError(f"{raw!r} is not an integer")
            return int(raw)
        if isinstance(default, float):
            if isinstance(raw, bool | list):
                raise ValueError(f"{raw!r} is not a number")
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(f"{raw!r} is not a finite number")
            return value
        if isinstance(default, tuple):
            if isinstance(raw, list | tuple):
                return tuple(str(x) for x in raw)
            return tuple(p.strip() for p in str(raw).split(",") if p.strip())
        if isinstance(raw, list):
            raise ValueError("must not be a list")
        return str(raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"TSUNAGU_{name.upper()}: {exc}") from None


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
    **overrides: Any,
) -> Settings:
    """Read settings: defaults, then the TOML file, then ``TSUNAGU_*`` variables, then overrides.

    Raises :class:`ConfigError` (one line naming the setting) on any bad value, unknown
    key in the TOML file or unknown ``TSUNAGU_*`` variable.
    """
    env = dict(os.environ if env is None else env)
    defaults = Settings()
    known = {f.name: f for f in fields(Settings)}
    values: dict[str, Any] = {}
    path = config_file or env.get("TSUNAGU_CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"TSUNAGU_CONFIG: cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"TSUNAGU_CONFIG: {path} is not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in known:
                raise ConfigError(f"TSUNAGU_CONFIG: unknown setting {key!r} in {path}")
            values[key] = _cast(key, raw, getattr(defaults, key))
    for var, raw in env.items():
        if not var.startswith("TSUNAGU_") or var == "TSUNAGU_CONFIG":
            continue
        key = var[len("TSUNAGU_") :].lower()
        if key not in known:
            if var in TOOL_VARIABLES or var.upper().startswith(TOOL_PREFIXES):
                continue  # read by a tool, the tests or the benchmarks: not a service setting
            raise ConfigError(f"{var}: unknown setting")
        values[key] = _cast(key, raw, getattr(defaults, key))
    for key, raw in overrides.items():
        if raw is not None:
            values[key] = _cast(key, raw, getattr(defaults, key))
    return Settings(**values)


def resolve_token_key(settings: Settings) -> Settings:
    """Return settings with a token key, creating one in the data directory if needed.

    The embedded default with no key configured generates a random HS256 secret once, stores
    it in ``<data_dir>/jwt-secret`` (mode 0600) and logs where it is, so that ``tsunagu token``
    and the server agree. Production (PostgreSQL) must configure a key explicitly.
    """
    if settings.jwt_secret or settings.jwt_public_key:
        return settings
    if not settings.is_embedded:
        raise ConfigError(
            "TSUNAGU_JWT_SECRET: required with PostgreSQL (or set TSUNAGU_JWT_PUBLIC_KEY)"
        )
    path = Path(settings.data_dir) / "jwt-secret"
    if not path.exists():
        # Write a complete file under a temporary name, then link it into place: two
        # processes starting at once agree on one key, and nobody reads a half-written file.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".jwt-secret.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
            log.warning("no token key configured: generated an HS256 secret in %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    secret = path.read_text(encoding="utf-8").strip()
    return dataclasses.replace(settings, jwt_secret=Secret(secret))
