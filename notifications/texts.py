"""User-facing texts in Japanese and English: system messages and notices. No I/O.

Templates use ``str.format`` fields: ``title`` (the contract's title), ``amount``,
``currency``, ``deadline`` (rendered in the reader's time zone, which is named unless it is
Japan's), ``hours`` (``minutes`` for a deadline reminder with less than an hour left),
``count``, ``sender``, ``reason``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

LOCALES = ("ja", "en")
# Zones a Japanese date is shown in without naming the zone.
JAPAN_ZONES = frozenset({"Asia/Tokyo", "Japan"})

# event type -> (ja, en) body of the system message posted into the contract thread
SYSTEM: dict[str, tuple[str, str]] = {
    "contract.concluded": (
        "契約が成立しました（{amount} {currency}、納期 {deadline}）。仮払いの完了まで作業を始めないでください。",
        "The contract is concluded ({amount} {currency}, due {deadline}). Do not start work until the deposit is paid.",
    ),
    "deposit.requested": ("クライアントに仮払いを依頼しました。", "The client has been asked to pay the deposit."),
    "deposit.paid": ("仮払いが完了しました。作業を開始できます。", "The deposit is paid. Work can start."),
    "deposit.refunded": ("仮払いが返金されました。", "The deposit has been refunded."),
    "deadline.changed": ("納期が {deadline} に変更されました。", "The deadline has changed to {deadline}."),
    "delivery.submitted": ("納品されました。内容を確認してください。", "The work has been delivered. Please review it."),
    "correction.requested": ("修正が依頼されました。", "A correction has been requested."),
    "contract.accepted": ("検収が完了し、報酬が支払われました。", "The delivery is accepted and the payment released."),
    "contract.cancelled": ("契約がキャンセルされました。", "The contract has been cancelled."),
    "review.requested": ("お互いの評価をお願いします。", "Please rate each other."),
}

# notice kind -> {locale: (title, body)}
NOTICES: dict[str, dict[str, tuple[str, str]]] = {
    "contract_concluded_client": {
        "ja": ("契約成立: {title}", "仮払い（{amount} {currency}）を行ってください。仮払い後に作業が始まります。"),
        "en": ("Contract concluded: {title}", "Please pay the deposit ({amount} {currency}); work starts after it."),
    },
    "contract_concluded_worker": {
        "ja": ("契約成立: {title}", "仮払いが完了するまで作業を始めないでください。"),
        "en": ("Contract concluded: {title}", "Do not start work until the deposit is paid."),
    },
    "deposit_requested": {
        "ja": ("仮払いのお願い: {title}", "{amount} {currency} の仮払いをお願いします。"),
        "en": ("Deposit requested: {title}", "Please pay the deposit of {amount} {currency}."),
    },
    "deposit_unpaid": {
        "ja": ("仮払いがまだです: {title}", "契約から{hours}時間が経ちました。仮払いを行ってください。"),
        "en": ("Deposit still unpaid: {title}", "{hours} hours since the contract. Please pay the deposit."),
    },
    "deposit_wait": {
        "ja": ("まだ作業を始めないでください: {title}", "仮払いが完了していません。完了の通知をお待ちください。"),
        "en": ("Do not start yet: {title}", "The deposit is not paid yet. Wait for the notice that it is."),
    },
    "deposit_paid": {
        "ja": ("仮払い完了: {title}", "作業を開始できます。納期は {deadline} です。"),
        "en": ("Deposit paid: {title}", "You can start work. The deadline is {deadline}."),
    },
    "deposit_refunded": {
        "ja": ("仮払い返金: {title}", "仮払いが返金されました。"),
        "en": ("Deposit refunded: {title}", "The deposit has been refunded."),
    },
    "deadline_reminder": {
        "ja": ("納期まであと{hours}時間: {title}", "納期は {deadline} です。間に合わない場合は早めにクライアントに相談してください。"),
        "en": ("{hours} h to the deadline: {title}", "The deadline is {deadline}. If you might miss it, tell the client early."),
    },
    "deadline_reminder_minutes": {  # a late reminder with less than an hour left
        "ja": ("納期まであと{minutes}分: {title}", "納期は {deadline} です。間に合わない場合は早めにクライアントに相談してください。"),
        "en": ("{minutes} min to the deadline: {title}", "The deadline is {deadline}. If you might miss it, tell the client early."),
    },
    "overdue": {
        "ja": ("納期を過ぎました: {title}", "納期（{deadline}）を過ぎています。メッセージで状況を共有してください。"),
        "en": ("Deadline passed: {title}", "The deadline ({deadline}) has passed. Please share the status in the thread."),
    },
    "deadline_changed": {
        "ja": ("納期変更: {title}", "新しい納期は {deadline} です。"),
        "en": ("Deadline changed: {title}", "The new deadline is {deadline}."),
    },
    "review_request": {
        "ja": ("納品の確認をお願いします: {title}", "納品物を確認し、検収または修正依頼をしてください。"),
        "en": ("Please review the delivery: {title}", "Check the delivery, then accept it or ask for a correction."),
    },
    "review_reminder": {
        "ja": ("納品の確認がまだです: {title}", "納品から{days}日が経ちました。検収をお願いします。"),
        "en": ("Delivery still awaiting review: {title}", "{days} days since the delivery. Please review it."),
    },
    "correction_requested": {
        "ja": ("修正依頼: {title}", "クライアントから修正が依頼されました。"),
        "en": ("Correction requested: {title}", "The client asked for a correction."),
    },
    "payment_released": {
        "ja": ("報酬の支払い: {title}", "検収が完了し、{amount} {currency} が支払われました。"),
        "en": ("Payment released: {title}", "The delivery is accepted; {amount} {currency} has been released."),
    },
    "contract_cancelled": {
        "ja": ("契約キャンセル: {title}", "この契約はキャンセルされました。"),
        "en": ("Contract cancelled: {title}", "This contract has been cancelled."),
    },
    "rating_request": {
        "ja": ("評価のお願い: {title}", "取引相手の評価をお願いします。"),
        "en": ("Please leave a rating: {title}", "Please rate the other party."),
    },
    "chat": {
        "ja": ("{sender}さんから{count}件の新しいメッセージ", "{title}"),
        "en": ("{count} new messages from {sender}", "{title}"),
    },
    "chat_one": {
        "ja": ("{sender}さんから新しいメッセージ", "{title}"),
        "en": ("New message from {sender}", "{title}"),
    },
}

EMAIL_FOOTER = {
    "ja": "通知設定の変更・配信停止: {unsubscribe}",
    "en": "Change your notification settings or unsubscribe: {unsubscribe}",
}


def fmt_time(us: int, tz: str, locale: str) -> str:
    try:
        local = datetime.fromtimestamp(us / 1_000_000, tz=UTC).astimezone(ZoneInfo(tz))
    except (OverflowError, ValueError, OSError):
        # A time that cannot be shown in the zone (intake refuses such dates; an old row may
        # still hold one): UTC rather than an exception in the scheduler's batch.
        try:
            return datetime.fromtimestamp(us / 1_000_000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        except (OverflowError, ValueError, OSError):
            return "?"
    if locale == "ja":
        # Japan's own time needs no zone; any other zone is named, as in English.
        zone = "" if tz in JAPAN_ZONES else f" ({tz})"
        return f"{local.month}月{local.day}日 {local:%H:%M}{zone}"
    return f"{local:%Y-%m-%d %H:%M} ({tz})"


def _params(params: dict[str, Any], tz: str, locale: str) -> dict[str, Any]:
    out = dict(params)
    if isinstance(out.get("deadline"), int):
        out["deadline"] = fmt_time(out["deadline"], tz, locale)
    out.setdefault("currency", "JPY")
    if isinstance(out.get("amount"), int):
        out["amount"] = f"{out['amount']:,}"
    return out


def notice_text(kind: str, params: dict[str, Any], *, locale: str, tz: str) -> tuple[str, str]:
    """(title, body) of a notice in ``locale`` (ja or en)."""
    locale = locale if locale in LOCALES else "ja"
    if kind == "chat" and int(params.get("count", 1)) == 1:
        kind = "chat_one"
    elif kind == "deadline_reminder":
        minutes = _minutes_left(params)
        if minutes is not None:  # "36 min to the deadline", not "0.6 h"
            kind, params = "deadline_reminder_minutes", {**params, "minutes": minutes}
    title, body = NOTICES[kind][locale]
    p = _params(params, tz, locale)
    return title.format_map(_Missing(p)), body.format_map(_Missing(p))


def _minutes_left(params: dict[str, Any]) -> int | None:
    """A deadline reminder with less than an hour left: the minutes left (``minutes`` if
    given, else from a fractional ``hours``); None to word it in hours."""
    minutes = params.get("minutes")
    if isinstance(minutes, int) and not isinstance(minutes, bool) and minutes > 0:
        return minutes
    hours = params.get("hours")
    if isinstance(hours, (int, float)) and not isinstance(hours, bool) and 0 < hours < 1:
        return max(1, round(hours * 60))
    return None


def system_text(event_type: str, params: dict[str, Any], *, tz: str) -> dict[str, str]:
    """The system message for an event, in both languages (deadline in ``tz``)."""
    ja, en = SYSTEM[event_type]
    return {"ja": ja.format_map(_Missing(_params(params, tz, "ja"))),
            "en": en.format_map(_Missing(_params(params, tz, "en")))}


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""
