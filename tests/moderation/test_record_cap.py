"""A message with a thousand findings: every span is masked, the record lists 100.

A hostile message of 10,000 characters ("my LINE is kotaro " repeated) gives 1,110 findings;
listed whole, its moderation record would be 25 times the message's size, written into the
stored row, the review item and the dispute log. The record keeps the first 100 findings of
the message, the first of every further rule, every finding in the sender's earlier
messages, and the total (``findings_total``); the mask covers every finding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chat.auth import Identity
from chat.config import Secret, Settings
from moderation.findings import Finding
from moderation.policy import MASK_CHAR
from moderation.screen import RECORDED_FINDINGS, ModerationScreener, _recorded
from tests.support import NoHistoryStore


class NoRestrictions:
    async def restricted_users(self) -> list[str]:
        return []


def screener(tmp_path: Path) -> ModerationScreener:
    """The default policy without escalation: contact details before a contract are masked."""
    default = (Path(__file__).parents[2] / "moderation" / "policy.toml").read_text("utf-8")
    policy = tmp_path / "policy.toml"
    policy.write_text(default.replace("high_severity_steps = 1", "high_severity_steps = 0"),
                      "utf-8")
    settings = Settings(jwt_secret=Secret("x" * 40), moderation_policy=str(policy))
    return ModerationScreener(settings, store=NoHistoryStore(), fanout=Any,  # type: ignore[arg-type]
                              queue=NoRestrictions())  # type: ignore[arg-type]


SENDER = Identity("tanaka", frozenset({"client"}), "田中", "ja", "Asia/Tokyo", 2e9)


async def test_every_finding_is_masked_and_the_record_lists_a_hundred(tmp_path: Path) -> None:
    body = "my LINE is kotaro " * 555  # 9,990 characters
    verdict = await screener(tmp_path).screen_send(
        thread="t1", stage="inquiry", sender=SENDER, sender_role="client", body=body)
    assert verdict.action == "mask" and verdict.masked is not None and verdict.record
    assert "LINE" not in verdict.masked and "kotaro" not in verdict.masked
    assert verdict.masked.count(MASK_CHAR) == body.count("LINE") * 4 + body.count("kotaro") * 6
    record = verdict.record
    assert record["findings_total"] == body.count("LINE") + body.count("kotaro") > 1000
    assert len(record["findings"]) == RECORDED_FINDINGS
    assert {f["rule"] for f in record["findings"]} == {"contact.messenger",
                                                        "contact.messenger_id"}


async def test_a_short_record_is_whole_and_says_nothing_more(tmp_path: Path) -> None:
    verdict = await screener(tmp_path).screen_send(
        thread="t1", stage="inquiry", sender=SENDER, sender_role="client",
        body="my LINE is kotaro")
    assert verdict.record and len(verdict.record["findings"]) == 2
    assert "findings_total" not in verdict.record


def _finding(rule: str, start: int, index: int = 1) -> Finding:
    return Finding("contact_exchange", rule, start, start + 1, index, "medium",
                   {"ja": "", "en": ""})


def test_past_the_cap_each_further_rule_and_every_earlier_finding_is_kept() -> None:
    own = [_finding("contact.messenger", i) for i in range(150)]
    late = _finding("contact.email", 500)  # a rule first seen past the cap
    earlier = _finding("contact.phone", 3, index=0)  # in the sender's previous message
    kept = _recorded([earlier, *own, late, _finding("contact.email", 600)], current=1)
    assert kept == [earlier, *own[:RECORDED_FINDINGS], late]
