"""An ID labelled as something else's (an order's, a ticket's) near an app name is not a
messenger ID: 「注文ID: 12345」 after 「Slackは社内で使っています。」 is an order number, and
masking it (a high-severity finding) would hide work talk. A messenger ID stays one."""

from __future__ import annotations

import pytest

from moderation.scanner import Scanner

SCANNER = Scanner()


def _rules(text: str) -> list[tuple[str, str]]:
    return [(f.rule, text[f.start:f.end]) for f in SCANNER.scan(text)]


@pytest.mark.parametrize("text", [
    "Slackは社内で使っています。注文ID: 12345 の件で確認です",
    "Slackで連絡しましょう。チケットID: PRJ_123 の件",
    "LINEで連絡ください。案件IDは abc_987 です",
    "Let's talk on Slack. The order id: ord_5521 is delayed",
    "Slackで連絡しましょう。請求番号: inv_2024_001",
])
def test_an_order_or_ticket_id_is_not_a_messenger_id(text: str) -> None:
    found = _rules(text)
    assert "contact.messenger_id" not in [r for r, _ in found], found


@pytest.mark.parametrize("text, handle", [
    ("LINE ID: kota_77", "kota_77"),
    ("LINEのID: kota_77", "kota_77"),
    ("LINEで連絡ください。ID: tanaka_88", "tanaka_88"),
    ("My LINE id is sakura_0415", "sakura_0415"),
    ("Skype: live:tanaka", "live:tanaka"),
    ("LINE → kota_77", "kota_77"),
])
def test_a_messenger_id_is_still_found(text: str, handle: str) -> None:
    assert ("contact.messenger_id", handle) in _rules(text)
