"""A readable transcript of a thread's log (HTML, Japanese and English labels). No I/O."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from chat.models import rfc3339

from . import log
from .chain import LogEntry, purge_coverage

# The kinds moderation writes (moderation/queue.py: a withheld attempt is logged as
# ``moderation.<status>``, held or blocked; see docs/disputes.md). They have no constants.
MODERATION_HELD = "moderation.held"
MODERATION_BLOCKED = "moderation.blocked"
MODERATION_FINDING = "moderation.finding"
MODERATION_DECISION = "moderation.decision"

KIND_LABELS = {
    log.THREAD_CREATED: "スレッド作成 / Thread created",
    log.THREAD_UPDATED: "スレッド更新 / Thread updated",
    log.PARTICIPANT_ADDED: "参加者追加 / Participant added",
    log.MESSAGE: "メッセージ / Message",
    log.EDIT: "編集 / Edit",
    log.DELETE: "削除 / Deletion",
    log.READ: "既読 / Read receipt",
    log.THANKS: "ありがとう / Thanks",
    log.DISPUTE_OPENED: "紛争開始 / Dispute opened",
    log.DISPUTE_CLOSED: "紛争終了 / Dispute closed",
    log.PURGED: "保存期間満了による削除 / Purged (retention)",
    MODERATION_HELD: "モデレーション保留 / Held by moderation",
    MODERATION_BLOCKED: "モデレーションによるブロック / Blocked by moderation",
    MODERATION_FINDING: "モデレーション検出 / Moderation finding",
    MODERATION_DECISION: "モデレーション判断 / Moderation decision",
}


def kind_label(kind: str) -> str:
    """The entry kind in Japanese and English (a kind without a label keeps its name)."""
    return KIND_LABELS.get(kind) or f"その他 / Other: {kind}"


def _content(e: LogEntry, covered: int) -> str:
    if e.payload is None:
        if e.seq <= covered:
            return "<em>（内容は保存期間満了により削除済み / content purged after retention）</em>"
        return ("<strong>（内容が欠落しています。削除記録の対象外です / content missing (not "
                "covered by a purge record)）</strong>")
    p: dict[str, Any] = e.payload
    if e.kind == "message":
        return html.escape(str(p.get("body", "")))
    if e.kind == "edit":
        prev = p.get("previous", {}).get("body", "")
        return (f"<del>{html.escape(str(prev))}</del><br>→ {html.escape(str(p.get('body', '')))}")
    if e.kind == "delete":
        return f"<del>{html.escape(str(p.get('previous', {}).get('body', '')))}</del>"
    return f"<code>{html.escape(str(p))}</code>"


def render(thread: str, entries: Sequence[LogEntry], *, checkpoint: dict[str, Any],
           exported_at: int, exported_by: str) -> str:
    covered = purge_coverage(entries)
    rows = "\n".join(
        f"<tr><td>{e.seq}</td><td>{rfc3339(e.at)}</td><td>{html.escape(e.actor)}</td>"
        f"<td>{html.escape(kind_label(e.kind))}</td><td>{_content(e, covered)}</td>"
        f"<td><code>{e.hash[:16]}…</code></td></tr>"
        for e in entries)
    return f"""<!doctype html>
<html lang="ja"><head><meta charset="utf-8">
<title>証拠記録 / Evidence transcript — {html.escape(thread)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;vertical-align:top}}</style></head><body>
<h1>証拠記録 / Evidence transcript</h1>
<dl>
<dt>スレッド / Thread</dt><dd>{html.escape(thread)}</dd>
<dt>出力日時 / Exported at</dt><dd>{rfc3339(exported_at)}</dd>
<dt>出力者 / Exported by</dt><dd>{html.escape(exported_by)}</dd>
<dt>チェックポイント / Checkpoint</dt><dd>size {checkpoint.get("size")},
 root <code>{html.escape(str(checkpoint.get("root")))}</code>,
 key <code>{html.escape(str(checkpoint.get("key_id")))}</code></dd>
</dl>
<p>この記録は改ざん検知可能です。検証: <code>tsunagu verify BUNDLE --public-key KEY.pem</code><br>
This record is tamper-evident. Verify with <code>tsunagu verify BUNDLE --public-key KEY.pem</code>.
The transcript is for reading; entries.jsonl is the evidence.</p>
<table><thead><tr><th>番号 / #</th><th>日時 (UTC) / Time (UTC)</th><th>実行者 / Actor</th>
<th>種別 / Kind</th><th>内容 / Content</th><th>ハッシュ / Hash</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""
