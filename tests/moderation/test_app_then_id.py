"""An app name, then (in a later sentence of the same message) an ID or the promise of one:
"Skypeはできませんが、LINEならできます。IDは tanaka_1988 です" was not caught, because the
app name's own sentence has no cue and the ID sits in the next one."""

import pytest

from moderation.findings import CONTACT
from moderation.policy import mask
from moderation.scanner import Scanner

SCANNER = Scanner(allow_domains=["example-platform.jp"], allow_phrases=["LINE Pay"])


def contact(text: str, history: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(rule, text of the span) of the contact_exchange findings of the current message."""
    return [(f.rule, text[f.start:f.end]) for f in SCANNER.scan(text, history)
            if f.category == CONTACT and f.message_index == len(history)]


@pytest.mark.parametrize(
    ("text", "app", "handle"),
    [
        # the reported miss, and the same with a ":" marker
        ("Skypeはできませんが、LINEならできます。IDは tanaka_1988 です", "LINE", "tanaka_1988"),
        ("Skypeはできませんが、LINEならできます。ID: tanaka_1988", "LINE", "tanaka_1988"),
        # variants (some were caught before: they must stay caught)
        ("no Skype, but my LINE id is tanaka88", "LINE id", "tanaka88"),
        ("ラインならOK　ID: tanaka88", "ライン", "tanaka88"),
        ("No Skype. But LINE works. My ID is tanaka88", "LINE", "tanaka88"),
        ("Telegram works for me. ID: tanaka_88", "Telegram", "tanaka_88"),
        ("WhatsAppなら使えます。ユーザー名は tanaka_88 です", "WhatsApp", "tanaka_88"),
    ],
)
def test_app_then_handle(text: str, app: str, handle: str) -> None:
    found = contact(text)
    assert ("contact.messenger", app) in found
    assert ("contact.messenger_id", handle) in found
    # the ID is masked with the app name
    masked = mask(text, SCANNER.scan(text), 0)
    assert handle not in masked and "●" * len(handle) in masked


@pytest.mark.parametrize(
    ("text", "app"),
    [
        ("LINEなら大丈夫です、ID送りますね", "LINE"),
        ("LINEなら大丈夫です。ID送りますね", "LINE"),
        ("LINEなら大丈夫です。IDは後で送ります", "LINE"),
        ("Discordならいけます。IDは後ほどお伝えします", "Discord"),
        ("No Skype. But LINE works. I'll send my ID later", "LINE"),
    ],
)
def test_app_then_promise_of_an_id(text: str, app: str) -> None:
    """A promise to send the ID is intent enough; there is no ID to report yet."""
    found = contact(text)
    assert ("contact.messenger", app) in found
    assert not [r for r, _ in found if r == "contact.messenger_id"]


def test_the_id_belongs_to_the_nearest_app() -> None:
    """The refused app named before is not reported for the ID given with the other."""
    text = "No Skype. But LINE works. My ID is tanaka88"
    assert ("contact.messenger", "Skype") not in contact(text)


def test_explained_in_japanese_and_english() -> None:
    text = "Skypeはできませんが、LINEならできます。IDは tanaka_1988 です"
    for f in SCANNER.scan(text):
        assert f.explanation["ja"] and f.explanation["en"]
        assert f.explanation["ja"] != f.explanation["en"]


@pytest.mark.parametrize(
    "text",
    [
        # ordinary work talk
        "line 3 of the file",
        "LINEスタンプのデザイン案件です",
        "the ID column of the table",
        "Skype meeting is not needed, we use the platform chat",
        # an app named, then an ID that is not a messenger ID
        "LINEならできます。チケットIDは PRJ_123 です",
        "Slackの件は了解です。案件IDは job_123 です",
        "We use Slack internally. The order id is abc_123.",
        "Skype meeting is not needed, we use the platform chat. Ticket ID: T_1234",
        "LINEスタンプのデザイン案件です。IDは stamp_01 です",
        "Slackの件は了解です。ID: 12345 の件で確認です",
        # the app is refused
        "LINEは使っていません。IDは tanaka_1988 です",
        "Skypeは使えません。IDもお伝えできません",
    ],
)
def test_work_talk_stays_allowed(text: str) -> None:
    assert contact(text) == []
