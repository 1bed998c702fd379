from pathlib import Path

import pytest

from moderation.findings import Finding
from moderation.policy import ACTIONS, Policy, PolicyError, mask
from moderation.scanner import Scanner

POLICY = Policy.load()


def _finding(category: str, severity: str = "medium", start: int = 0, end: int = 3) -> Finding:
    return Finding(category, "test.rule", start, end, 0, severity, {"ja": "x", "en": "x"})  # type: ignore[arg-type]


def test_no_findings_allow() -> None:
    d = POLICY.decide([], stage="inquiry", sender_role="client")
    assert d.action == "allow" and d.risk == 0 and d.sender_warning is None


def test_contact_before_contract_is_masked() -> None:
    d = POLICY.decide([_finding("contact_exchange")], stage="inquiry", sender_role="worker")
    assert d.action == "mask"
    assert d.sender_warning is not None and set(d.sender_warning) == {"ja", "en"}


def test_high_severity_escalates() -> None:
    d = POLICY.decide([_finding("contact_exchange", "high")], stage="inquiry", sender_role="worker")
    assert d.action == "hold"


def test_off_platform_is_held_and_role_override() -> None:
    assert POLICY.decide([_finding("off_platform_deal")], stage="in_progress",
                         sender_role="worker").action == "hold"
    client = POLICY.decide([_finding("personal_data_request")], stage="in_progress",
                           sender_role="client")
    worker = POLICY.decide([_finding("personal_data_request")], stage="in_progress",
                           sender_role="worker")
    assert ACTIONS.index(client.action) > ACTIONS.index(worker.action)
    assert client.recipient_warning is not None
    assert "bank account" in client.recipient_warning["en"]


def test_warnings_follow_the_direction_of_the_message() -> None:
    """A client's message warns the worker recipient in a worker's words; a worker's message
    warns the client recipient in a client's words (``audience: client``), in both languages."""
    for category in ("personal_data_request", "expense_demand", "off_platform_deal"):
        from_client = POLICY.decide([_finding(category)], stage="in_progress",
                                    sender_role="client")
        from_worker = POLICY.decide([_finding(category)], stage="in_progress",
                                    sender_role="worker")
        assert from_client.recipient_warning is not None
        assert from_worker.recipient_warning is not None
        assert "audience" not in from_client.recipient_warning
        assert from_worker.recipient_warning["audience"] == "client"
        assert "worker" in from_worker.recipient_warning["en"], category
        assert "クライアントに" not in from_worker.recipient_warning["ja"]
        assert "to get work" not in from_worker.recipient_warning["en"]
    pdr = POLICY.decide([_finding("personal_data_request")], stage="in_progress",
                        sender_role="worker").recipient_warning
    assert pdr is not None and "ワーカーに伝える必要はありません" in pdr["ja"]
    # the worker who demands expenses is not told "workers may not be asked to pay"
    sender = POLICY.decide([_finding("expense_demand")], stage="in_progress",
                           sender_role="worker").sender_warning
    assert sender is not None and "Workers may not" not in sender["en"]
    assert "契約" in sender["ja"]
    # team members (no override) keep the default texts
    member = POLICY.decide([_finding("expense_demand")], stage="in_progress",
                           sender_role="member")
    assert member.sender_warning == POLICY.sender_warnings["expense_demand"]


def test_optional_warning_tables_are_checked(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "moderation" / "policy.toml").read_text("utf-8")
    bad = text.replace("[warnings.expense_demand.sender_worker]",
                       "[warnings.expense_demand.sender_workr]")
    with pytest.raises(PolicyError, match=r"warnings\.expense_demand\.sender_workr"):
        Policy.load(str(_write(tmp_path, bad)))


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_strictest_category_wins_and_risk_is_capped() -> None:
    findings = [_finding("contact_exchange"), _finding("expense_demand", "high")] * 5
    d = POLICY.decide(findings, stage="in_progress", sender_role="client")
    assert d.action == "hold" and d.risk == 100
    assert d.recipient_warning is not None and "pay" in d.recipient_warning["en"]


def test_unknown_stage_rejected() -> None:
    with pytest.raises(ValueError):
        POLICY.decide([], stage="draft", sender_role="client")


def test_bad_policy_file_names_key(tmp_path: Path) -> None:
    default = (Path(__file__).resolve().parents[2] / "moderation/policy.toml").read_text("utf-8")
    bad = tmp_path / "p.toml"
    bad.write_text(default.replace('in_progress = "flag"', 'in_progress = "explode"', 1), "utf-8")
    with pytest.raises(PolicyError, match=r"actions\.contact_exchange\.in_progress"):
        Policy.load(str(bad))
    extra = tmp_path / "q.toml"
    extra.write_text(default + "\n[surprise]\nx = 1\n", "utf-8")
    with pytest.raises(PolicyError, match="surprise"):
        Policy.load(str(extra))
    broken = tmp_path / "r.toml"
    broken.write_text("[actions", "utf-8")
    with pytest.raises(PolicyError):
        Policy.load(str(broken))


def test_operator_policy_path(tmp_path: Path) -> None:
    default = (Path(__file__).resolve().parents[2] / "moderation/policy.toml").read_text("utf-8")
    custom = tmp_path / "c.toml"
    custom.write_text(default.replace('inquiry = "mask"', 'inquiry = "block"', 1), "utf-8")
    d = Policy.load(str(custom)).decide([_finding("contact_exchange")], stage="inquiry",
                                        sender_role="worker")
    assert d.action == "block"


def test_mask_replaces_spans_in_that_message() -> None:
    text = "call 090-5555-0123 now"
    findings = Scanner().scan(text)
    masked = mask(text, findings, 0)
    assert "090" not in masked and masked.startswith("call ") and len(masked) == len(text)
    assert mask(text, findings, 1) == text
