"""A message fanned out to a thread is rendered once per kind of viewer (sender or not, and
the locale when moderation spoke), not once per connection - and each viewer still sees
only what is theirs: the sender their client_msg_id and their words, the others the masked
body and their own language's warning."""

from __future__ import annotations

from typing import Any

import orjson

from chat.models import Message
from chat.session import _MessageFrames
from moderation.policy import MASK_CHAR
from tests.support import Client, Node


def _message(**kw: Any) -> Message:
    fields: dict[str, Any] = {"id": "m_1", "thread": "t_1", "seq": 7, "sender": "tanaka",
                              "kind": "user", "body": "hello", "created_at": 1_700_000_000_000_000,
                              "client_msg_id": "c-1"}
    fields.update(kw)
    return Message(**fields)


def test_recipients_share_one_rendering_and_the_sender_has_its_own() -> None:
    frames = _MessageFrames()
    msg = _message()
    others = [frames.frame(msg, user, "en") for user in ("sato", "suzuki", "kato")]
    assert others[0] is others[1] is others[2]
    assert frames.frame(msg, "sato", "ja") is others[0], "no moderation: the locale is moot"
    mine = frames.frame(msg, "tanaka", "ja")
    assert orjson.loads(mine)["message"]["client_msg_id"] == "c-1"
    assert "client_msg_id" not in orjson.loads(others[0])["message"]
    # The next message starts afresh (nothing of the previous one is reused).
    nxt = frames.frame(_message(id="m_2", seq=8, body="next"), "sato", "en")
    assert orjson.loads(nxt)["message"]["body"] == "next"


def test_with_moderation_the_recipients_locale_picks_the_rendering() -> None:
    frames = _MessageFrames()
    record = {"action": "mask", "categories": ["contact_exchange"],
              "recipient_warning": {"ja": "連絡先の交換にご注意ください", "en": "Mind contact swaps"}}
    msg = _message(masked="●●●●●", moderation=record)
    en = frames.frame(msg, "sato", "en")
    assert frames.frame(msg, "suzuki", "en") is en
    ja = frames.frame(msg, "kato", "ja")
    assert ja is not en
    assert orjson.loads(en)["message"]["moderation"]["warning"]["text"] == "Mind contact swaps"
    assert orjson.loads(ja)["message"]["moderation"]["warning"]["text"].startswith("連絡先")
    assert orjson.loads(en)["message"]["body"] == "●●●●●"
    assert orjson.loads(frames.frame(msg, "tanaka", "en"))["message"]["body"] == "hello"


async def test_a_team_thread_gets_each_viewer_its_own_view(settings_factory: Any) -> None:
    node = await Node(settings_factory()).start()
    clients: dict[str, Client] = {}
    try:
        thread = await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                          ("suzuki", "member"), ("kato", "member"),
                                          kind="team", stage="inquiry")
        tid = thread["id"]
        for u, loc in (("tanaka", "ja"), ("sato", "en"), ("suzuki", "en"), ("kato", "ja")):
            clients[u] = await Client(node.ws_url, node.token(u, "client", locale=loc)).connect()
        ok = await clients["tanaka"].send(tid, "Do you have LINE? add me there", cmid="c-line")
        assert ok["moderation"]["action"] == "mask"
        own = (await clients["tanaka"].push("message"))["message"]
        assert own["body"] == "Do you have LINE? add me there" and own["client_msg_id"] == "c-line"
        seen = {u: (await clients[u].push("message"))["message"] for u in ("sato", "suzuki", "kato")}
        for u, view in seen.items():
            assert view["masked"] is True and MASK_CHAR in view["body"], u
            assert "client_msg_id" not in view, u
        assert seen["sato"] == seen["suzuki"]
        sato = seen["sato"]["moderation"]["warning"]
        assert sato["text"] == sato["en"]
        kato = seen["kato"]["moderation"]["warning"]
        assert kato["text"] == kato["ja"]
    finally:
        for c in clients.values():
            await c.close()
        await node.stop()
