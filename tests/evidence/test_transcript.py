"""The dispute transcript (transcript.html of an evidence bundle) labels every entry kind in
Japanese and English: the kinds chat writes and those moderation writes."""

from __future__ import annotations

import ast
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from chat.evidence import log
from chat.evidence.chain import Pending, extend
from chat.evidence.transcript import KIND_LABELS, kind_label, render
from tests.support import Client, Node

ROOT = Path(__file__).resolve().parents[2]
# Calls that append to the thread log, and the position of their `kind` argument.
APPENDERS = {"record": 2, "record_sync": 2, "log_entry": 2, "Pending": 1}
# Kinds built with an f-string, and every value they take (moderation/queue.py logs a
# withheld attempt as moderation.<status>, status held or blocked).
FORMATTED = {"moderation.{status}": ["moderation.held", "moderation.blocked"]}

OFFSITE = "Let's sign the contract directly outside the platform to avoid the fee."
EXPENSE = "作業の前に登録料3万円を私の口座に振り込んでください"
LINE_ASK = "Do you have LINE? add me there"


def _written_kinds() -> Iterator[tuple[str, str]]:
    """(file:line, kind) of every log append in the application's source."""
    for package in ("chat", "moderation", "notifications"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text("utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                pos = APPENDERS.get(name)
                if pos is None or len(node.args) <= pos:
                    continue
                arg = node.args[pos]
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield where, arg.value
                elif isinstance(arg, ast.Name) and isinstance(getattr(log, arg.id, None), str):
                    yield where, getattr(log, arg.id)
                elif isinstance(arg, ast.JoinedStr):
                    pattern = "".join(
                        v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                        for v in arg.values if isinstance(v, ast.Constant | ast.FormattedValue))
                    assert pattern in FORMATTED, f"{where}: a new formatted kind {pattern!r}"
                    for kind in FORMATTED[pattern]:
                        yield where, kind
                elif isinstance(arg, ast.Name) and arg.id == "kind":
                    continue  # record()/record_sync() passing their own parameter on
                else:
                    raise AssertionError(f"{where}: cannot read the kind {ast.unparse(arg)}")


def test_every_kind_the_code_writes_has_a_bilingual_label() -> None:
    written = list(_written_kinds())
    kinds = {k for _, k in written}
    # The scan does see chat's and moderation's appends.
    assert {log.MESSAGE, log.EDIT, log.DISPUTE_OPENED, log.PURGED} <= kinds, kinds
    assert {"moderation.held", "moderation.blocked", "moderation.finding",
            "moderation.decision"} <= kinds, kinds
    missing = sorted(f"{where}: {kind}" for where, kind in written if kind not in KIND_LABELS)
    assert missing == [], f"log entry kinds without a transcript label: {missing}"
    for kind, label in KIND_LABELS.items():
        ja, sep, en = label.partition(" / ")
        assert sep and ja and en, (kind, label)
        assert any("\u3040" <= c <= "\u9fff" for c in ja), (kind, label)
        assert en.isascii(), (kind, label)


def test_an_unlisted_kind_is_still_named_in_both_languages() -> None:
    assert kind_label("something.new") == "その他 / Other: something.new"
    entries, _ = extend({}, [Pending("t1", "something.new", "x", {"a": 1}, 1)])
    page = render("t1", entries, checkpoint={}, exported_at=2, exported_by="d1")
    assert "その他 / Other: something.new" in page


async def test_transcript_of_a_moderated_thread_names_moderation_entries(
        settings_factory: Any, tmp_path: Path) -> None:
    """A blocked, a held then released, and a masked message, exported by dispute staff."""
    default = (ROOT / "moderation" / "policy.toml").read_text("utf-8")
    custom = default.replace('[actions.expense_demand]\ninquiry = "hold"',
                             '[actions.expense_demand]\ninquiry = "block"')
    assert custom != default
    policy = tmp_path / "policy.toml"
    policy.write_text(custom, "utf-8")
    node = await Node(settings_factory(moderation_policy=str(policy))).start()
    client = None
    try:
        tid = (await node.create_thread(("tanaka", "client"), ("sato", "worker"),
                                        kind="inquiry"))["id"]
        client = await Client(node.ws_url, node.token("tanaka", "client")).connect()
        assert (await client.send(tid, EXPENSE))["withheld"]["action"] == "block"
        held = await client.send(tid, OFFSITE)
        assert held["withheld"]["status"] == "held"
        assert (await client.send(tid, LINE_ASK))["moderation"]["action"] == "mask"
        mod = node.token("mod1", "moderator")
        status, queue = await node.http("GET", "/v1/moderation/queue", mod)
        assert status == 200, queue
        item = next(i for i in queue["items"] if i["withheld_id"] == held["withheld"]["id"])
        status, _ = await node.http("POST", f"/v1/moderation/items/{item['id']}/decide", mod,
                                    {"decision": "release", "note": "契約後なので問題なし"})
        assert status == 200
        staff = node.token("disp1", "dispute")
        status, opened = await node.http("POST", "/v1/disputes", staff,
                                         {"thread": tid, "reason": "client complaint #12"})
        assert status == 201, opened
        did = opened["dispute"]["id"]
        async with aiohttp.ClientSession() as s, s.get(
                f"{node.url}/v1/disputes/{did}/export", params={"reason": "complaint #12"},
                headers={"Authorization": f"Bearer {staff}"}) as r:
            assert r.status == 200, await r.text()
            data = await r.read()
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            page = z.read("transcript.html").decode("utf-8")
            entries = [line for line in z.read("entries.jsonl").decode().splitlines() if line]
    finally:
        if client is not None:
            await client.close()
        await node.stop()

    assert len(entries) > 6
    for label in ("モデレーションによるブロック / Blocked by moderation",
                  "モデレーション保留 / Held by moderation",
                  "モデレーション検出 / Moderation finding",
                  "モデレーション判断 / Moderation decision",
                  "紛争開始 / Dispute opened", "メッセージ / Message"):
        assert label in page, label
    # No entry is labelled with its raw identifier.
    for kind in ("moderation.held", "moderation.blocked", "moderation.finding",
                 "moderation.decision"):
        assert f"<td>{kind}</td>" not in page, kind
    assert "Other:" not in page


def test_missing_content_is_not_called_a_purge() -> None:
    from dataclasses import replace

    entries, heads = extend({}, [Pending("t1", log.MESSAGE, "a", {"body": f"b{i}"}, i)
                                 for i in range(1, 4)])
    nulled = [replace(e, payload=None) if e.seq == 2 else e for e in entries]
    page = render("t1", nulled, checkpoint={}, exported_at=1, exported_by="s")
    assert "content missing (not covered by a purge record)" in page
    assert "content purged after retention" not in page
    more, _ = extend({"t1": heads["t1"]}, [Pending("t1", log.PURGED, "system",
                                                   {"through_seq": 3}, 9)])
    purged = [*(replace(e, payload=None) for e in entries), *more]
    page = render("t1", purged, checkpoint={}, exported_at=1, exported_by="s")
    assert page.count("content purged after retention") == 3
    assert "content missing" not in page
