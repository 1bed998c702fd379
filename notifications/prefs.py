"""Preferences and quiet hours: which channels a notice takes, and when. No I/O.

Channels: ``inapp`` (the inbox and the live ``notification`` frame), ``webpush``, ``mobile``
(FCM and APNs device tokens) and ``email``. A user turns a channel off per category
(``contract``, ``deadline``, ``review``, ``chat``); everything is on by default except chat
alerts by e-mail. Quiet hours (``HH:MM``-``HH:MM`` in the user's time zone, default
Asia/Tokyo 22:00-08:00) defer the push and e-mail copies of non-urgent notices to the end of
the quiet period; the in-app copy is stored at once (it makes no sound).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chat.errors import BadRequest

CHANNELS = ("inapp", "webpush", "mobile", "email")
DEFAULT_OFF = frozenset({("chat", "email")})


@dataclass(frozen=True, slots=True)
class UserProfile:
    user_id: str
    name: str
    locale: str
    tz: str
    email: str | None
    quiet_start: str
    quiet_end: str


def enabled(prefs: Mapping[tuple[str, str], bool], category: str, channel: str) -> bool:
    value = prefs.get((category, channel))
    if value is None:
        return (category, channel) not in DEFAULT_OFF
    return value


def pref_channel(delivery_channel: str) -> str:
    """The channel a preference names (:data:`CHANNELS`) for a delivery's channel: FCM and
    APNs are both ``mobile``."""
    return "mobile" if delivery_channel in ("fcm", "apns") else delivery_channel


def check_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"{tz!r} is not a time zone") from None
    return tz


_HHMM = re.compile(r"([0-9]{1,2}):([0-9]{2})")


def parse_hhmm(text: str) -> time:
    m = _HHMM.fullmatch(text)  # ASCII digits only: "²:00" passes str.isdigit, not int()
    if m is None or int(m[1]) >= 24 or int(m[2]) >= 60:
        raise BadRequest(f"{text[:20]!r} is not HH:MM (00:00 to 23:59)")
    return time(int(m[1]), int(m[2]))


def quiet_until(now_us: int, tz: str, start: str, end: str) -> int | None:
    """If ``now_us`` falls in the quiet hours (in ``tz``), the time they end; else None.

    ``start == end`` means no quiet hours. A period may wrap midnight (22:00-08:00).
    """
    a, b = parse_hhmm(start), parse_hhmm(end)
    if a == b:
        return None
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(now_us / 1_000_000, tz=UTC).astimezone(zone)
    t = local.time().replace(tzinfo=None)
    inside = (a <= t < b) if a < b else (t >= a or t < b)
    if not inside:
        return None
    end_day = local.date()
    if a > b and t >= a:
        end_day += timedelta(days=1)
    end_local = datetime.combine(end_day, b, tzinfo=zone)
    return int(end_local.timestamp() * 1_000_000)
