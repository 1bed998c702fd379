"""Settings: defaults, TOML + environment precedence, one-line errors, the token key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from chat.config import ConfigError, Secret, Settings, load_settings, resolve_token_key

SECRET = "s" * 40


def test_defaults_are_the_embedded_single_node() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.is_embedded and s.redis_url == ""
    assert s.effective_database_url == f"sqlite:///{Path('./data') / 'tsunagu.db'}"
    assert s.max_frame_bytes == 65536
    assert s.jwt_algorithms == ("HS256",)


def test_environment_is_read_and_typed() -> None:
    s = load_settings(env={
        "TSUNAGU_PORT": "9000",
        "TSUNAGU_RATE_PER_S": "2.5",
        "TSUNAGU_DEMO": "yes",
        "TSUNAGU_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "TSUNAGU_JWT_SECRET": SECRET,
        "TSUNAGU_DATABASE_URL": "postgresql://u@h/db",
        "PATH": "/ignored",
        "TSUNAGU_TEST_PG": "not a setting but a test knob",
    })
    assert s.port == 9000 and s.rate_per_s == 2.5 and s.demo is True
    assert s.allowed_origins == ("https://a.example", "https://b.example")
    assert isinstance(s.jwt_secret, Secret) and s.jwt_secret == SECRET
    assert not s.is_embedded


def test_precedence_default_toml_env_override(tmp_path: Path) -> None:
    cfg = tmp_path / "tsunagu.toml"
    cfg.write_text('port = 7000\nhost = "0.0.0.0"\nrate_burst = 5\n'
                   'allowed_origins = ["https://x.example"]\n', encoding="utf-8")
    only_file = load_settings(env={}, config_file=str(cfg))
    assert (only_file.port, only_file.host, only_file.rate_burst) == (7000, "0.0.0.0", 5)
    assert only_file.allowed_origins == ("https://x.example",)
    assert only_file.max_body_chars == Settings().max_body_chars  # untouched default
    env = {"TSUNAGU_CONFIG": str(cfg), "TSUNAGU_PORT": "7001"}
    from_env = load_settings(env=env)
    assert (from_env.port, from_env.host) == (7001, "0.0.0.0")  # env beats file
    overridden = load_settings(env=env, port=7002, host=None)
    assert (overridden.port, overridden.host) == (7002, "0.0.0.0")  # None keeps it


def _error(env: dict[str, str] | None = None, config: str | None = None,
           tmp_path: Path | None = None) -> str:
    path = None
    if config is not None:
        assert tmp_path is not None
        p = tmp_path / "c.toml"
        p.write_text(config, encoding="utf-8")
        path = str(p)
    with pytest.raises(ConfigError) as info:
        load_settings(env=env or {}, config_file=path)
    text = str(info.value)
    assert "\n" not in text and text.strip() == text and text
    return text


@pytest.mark.parametrize(("var", "value"), [
    ("PORT", "abc"), ("PORT", "70000"), ("PORT", "-1"), ("PORT", "1.5"),
    ("DATABASE_URL", "mysql://x/y"), ("DATABASE_URL", "sqlite:relative.db"),
    ("REDIS_URL", "http://localhost:6379"),
    ("JWT_ALGORITHMS", "none"), ("JWT_ALGORITHMS", "HS256,HS512"), ("JWT_ALGORITHMS", ","),
    ("JWT_SECRET", "short"),
    ("MAX_FRAME_BYTES", "-1"), ("MAX_FRAME_BYTES", "0"), ("MAX_BODY_CHARS", "-5"),
    ("RATE_PER_S", "-1"), ("RATE_PER_S", "0"), ("RATE_PER_S", "nan"), ("RATE_PER_S", "inf"),
    ("RATE_BURST", "0"), ("OUTBOUND_QUEUE_DEPTH", "-3"), ("MAX_CONNECTIONS_PER_USER", "0"),
    ("HEARTBEAT_S", "0"), ("JWT_LEEWAY_S", "-1"), ("HISTORY_MAX_LIMIT", "x"),
    ("DEMO", "maybe"), ("SQLITE_SYNCHRONOUS", "sometimes"), ("LOG_LEVEL", "LOUD"),
    ("ALLOWED_ORIGINS", "evil.example"), ("PG_POOL_MIN", "20"), ("NOTIFY_LINK_SECRET", "short"),
    ("GROUP_COMMIT_IN_FLIGHT", "0"), ("GROUP_COMMIT_IN_FLIGHT", "10"),
    ("NOTIFY_PUSH_HOSTS", "https://fcm.googleapis.com"), ("NOTIFY_PUSH_HOSTS", "a..b"),
])
def test_bad_value_is_one_line_naming_the_setting(var: str, value: str) -> None:
    text = _error({f"TSUNAGU_{var}": value})
    assert text.startswith(f"TSUNAGU_{var}:") or (
        var == "PG_POOL_MIN" and text.startswith("TSUNAGU_PG_POOL_MIN")), text


def test_asymmetric_algorithm_needs_a_public_key() -> None:
    text = _error({"TSUNAGU_JWT_ALGORITHMS": "RS256"})
    assert text.startswith("TSUNAGU_JWT_PUBLIC_KEY:")


def test_unknown_variable_is_named() -> None:
    assert _error({"TSUNAGU_PROT": "8080"}).startswith("TSUNAGU_PROT:")


@pytest.mark.parametrize(("toml", "name"), [
    ("prot = 1\n", "TSUNAGU_CONFIG"),  # unknown key
    ("port = \n", "TSUNAGU_CONFIG"),  # not TOML
    ("port = [1, 2]\n", "TSUNAGU_PORT"),
    ("port = 1.5\n", "TSUNAGU_PORT"),
    ("port = true\n", "TSUNAGU_PORT"),
    ('port = "x"\n', "TSUNAGU_PORT"),
    ("rate_per_s = [1]\n", "TSUNAGU_RATE_PER_S"),
    ("host = {a = 1}\n", "TSUNAGU_HOST"),
    ("host = [\"a\"]\n", "TSUNAGU_HOST"),
    ("demo = 3\n", "TSUNAGU_DEMO"),
    ('database_url = "oracle://x"\n', "TSUNAGU_DATABASE_URL"),
])
def test_bad_toml_is_one_line_naming_the_setting(tmp_path: Path, toml: str, name: str) -> None:
    text = _error(config=toml, tmp_path=tmp_path)
    assert text.startswith(f"{name}:"), text


def test_unknown_toml_key_and_missing_file_are_named(tmp_path: Path) -> None:
    text = _error(config="prot = 1\n", tmp_path=tmp_path)
    assert "'prot'" in text
    with pytest.raises(ConfigError) as info:
        load_settings(env={"TSUNAGU_CONFIG": str(tmp_path / "missing.toml")})
    assert str(info.value).startswith("TSUNAGU_CONFIG:") and "\n" not in str(info.value)


def test_secret_does_not_print() -> None:
    s = load_settings(env={"TSUNAGU_JWT_SECRET": SECRET})
    assert SECRET not in repr(s)
    assert SECRET not in repr(s.jwt_secret)
    assert SECRET not in f"{s!r}"
    assert str(s.jwt_secret) == SECRET  # still usable as the key


def test_token_key_is_created_once_and_reused(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "fresh" / "data"
    s = load_settings(env={}, data_dir=str(data))
    with caplog.at_level("WARNING", logger="tsunagu.config"):
        first = resolve_token_key(s)
    key = data / "jwt-secret"
    assert key.is_file()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert len(first.jwt_secret) >= 32
    assert key.read_text().strip() == first.jwt_secret
    assert str(key) in caplog.text
    again = resolve_token_key(s)
    assert again.jwt_secret == first.jwt_secret
    assert len(list(data.iterdir())) == 1


def test_configured_key_is_kept_and_no_file_written(tmp_path: Path) -> None:
    s = load_settings(env={"TSUNAGU_JWT_SECRET": SECRET}, data_dir=str(tmp_path / "d"))
    assert resolve_token_key(s) is s
    assert not (tmp_path / "d").exists()


def test_postgres_without_a_key_is_refused(tmp_path: Path) -> None:
    s = load_settings(env={"TSUNAGU_DATABASE_URL": "postgresql://u@127.0.0.1/x"},
                      data_dir=str(tmp_path / "d"))
    with pytest.raises(ConfigError) as info:
        resolve_token_key(s)
    assert str(info.value).startswith("TSUNAGU_JWT_SECRET:") and "\n" not in str(info.value)
    assert not (tmp_path / "d").exists()


def test_email_with_only_a_public_key_needs_a_link_secret() -> None:
    """Unsubscribe links are signed; with RS256/EdDSA tokens there is no HS256 key to derive
    their key from, so e-mail without TSUNAGU_NOTIFY_LINK_SECRET is refused at start-up."""
    env = {"TSUNAGU_SMTP_HOST": "mail.example", "TSUNAGU_JWT_ALGORITHMS": "EdDSA",
           "TSUNAGU_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----x"}
    assert _error(env).startswith("TSUNAGU_NOTIFY_LINK_SECRET:")
    ok = load_settings(env={**env, "TSUNAGU_NOTIFY_LINK_SECRET": "k" * 32})
    assert ok.notify_link_secret == "k" * 32
