"""Allowlists from settings and the command line; warnings chosen by the thread's stage."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from chat.cli import main as tsunagu
from chat.config import Settings, load_settings
from moderation.policy import Policy
from moderation.scanner import Scanner
from moderation.screen import ModerationScreener, platform_domains

SUPPORT = "write to support@tsunagu.jp"


def test_tsunagu_scan_takes_the_allowlist_options(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lines = (orjson.dumps({"id": "d", "text": SUPPORT}).decode() + "\n"
             + orjson.dumps({"id": "p", "text": "Do you have LINE? add me there"}).decode())
    monkeypatch.setattr("sys.stdin", io.StringIO(lines + "\n"))
    assert tsunagu(["scan"]) == 0
    rows = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["categories"] for r in rows] == [["contact_exchange"], ["contact_exchange"]]
    monkeypatch.setattr("sys.stdin", io.StringIO(lines + "\n"))
    assert tsunagu(["scan", "--allow-domain", "tsunagu.jp",
                    "--allow-phrase", "do you have line"]) == 0
    rows = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["categories"] for r in rows] == [[], []]


def test_settings_allow_phrases_and_platform_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSUNAGU_MODERATION_ALLOW_PHRASES", "do you have line,TsunaguPay")
    settings = load_settings()
    assert settings.moderation_allow_phrases == ("do you have line", "TsunaguPay")
    # The service's public address is the platform's own domain.
    assert platform_domains(Settings(notify_public_url="https://tsunagu.jp/app")) == (
        "tsunagu.jp",)
    assert platform_domains(Settings(moderation_allow_domains=("a.jp",))) == ("a.jp",)
    none: Any = None
    screener = ModerationScreener(
        Settings(moderation_allow_phrases=("do you have line",),
                 notify_public_url="https://tsunagu.jp"), none, none, none)
    assert screener.scanner.scan(SUPPORT) == []
    assert screener.scanner.scan("Do you have LINE? add me there") == []
    assert Scanner().scan(SUPPORT), "without the allowlist it is flagged"


@pytest.mark.parametrize("stage", ["in_progress", "delivered", "closed"])
def test_contact_warning_speaks_of_the_stage(stage: str) -> None:
    policy = Policy.load()
    findings = Scanner().scan("090-5555-1234に電話して")
    before = policy.decide(findings, stage="inquiry", sender_role="client")
    assert before.sender_warning is not None and "契約前" in before.sender_warning["ja"]
    assert "before a contract" in before.sender_warning["en"]
    later = policy.decide(findings, stage=stage, sender_role="client")
    # flag (mask when closed), raised one step by the high-severity phone number
    assert later.action == ("hold" if stage == "closed" else "mask")
    assert later.sender_warning is not None
    assert "契約前" not in later.sender_warning["ja"]
    assert "before a contract" not in later.sender_warning["en"]
    worker = policy.decide(findings, stage=stage, sender_role="worker")
    assert worker.sender_warning == later.sender_warning


def test_stage_warnings_are_validated() -> None:
    import tomllib
    from importlib import resources

    from moderation.policy import PolicyError

    data = tomllib.loads(resources.files("moderation").joinpath("policy.toml").read_text())
    data["warnings"]["contact_exchange"]["stages"]["someday"] = {"sender": {"ja": "x",
                                                                            "en": "x"}}
    with pytest.raises(PolicyError, match=r"warnings\.contact_exchange\.stages\.someday"):
        Policy.from_dict(data)
