"""Detectors for email addresses (plain, spelled out, reversed) and invitation links."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from moderation import normalize as nz
from moderation.context import Hit, ScanText

_EMAIL: Final = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_])?"
    r"@(?P<domain>[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*"
    r"[A-Za-z0-9])?)*\.(?P<tld>[A-Za-z]{2,24}))(?![A-Za-z0-9\-])"
)
# Reversed address: "moc.elpmaxe@oidutsarot".
_REVERSED: Final = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2,6}\.[A-Za-z0-9.\-]+@[A-Za-z0-9._\-]+(?![A-Za-z0-9@])"
)
_COMMON_TLDS: Final = frozenset(
    "com net org jp io co info me biz dev app uk us de fr kr cn tw ca au in xyz ne ac or "
    "edu gov page site email".split()
)
_FREE_MAIL: Final = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?:gmail|googlemail|yahoo|outlook|hotmail|icloud|proton(?:mail)?"
    r"|live|aol)(?![A-Za-z0-9])"
)
_PLACEHOLDER_LOCAL: Final = frozenset(
    "example test user name yourname your.name you me foo bar baz sample dummy noreply "
    "no-reply email mail someone somebody john.doe jane.doe jdoe xxx abc info.example".split()
)
_PLACEHOLDER_DOMAINS: Final = ("example.com", "example.org", "example.net", "example.jp")

_LINK: Final = re.compile(
    r"(?i)(?:https?://)?(?:[\w-]+\.)*(?:zoom\.us/(?:j|my|s)/|meet\.google\.com/|discord\.gg/|"
    r"discord(?:app)?\.com/invite/|join\.slack\.com/|line\.me/|lin\.ee/|t\.me/|wa\.me/|"
    r"chat\.whatsapp\.com/|m\.me/|join\.skype\.com/|teams\.microsoft\.com/l/meetup|"
    r"u\.wechat\.com/|open\.kakao\.com/|qr\.kakao\.com/|ig\.me/|signal\.me/)[^\s<>\"'「」）)]*"
)


def is_placeholder(address: str) -> bool:
    local, _, domain = address.lower().partition("@")
    return local in _PLACEHOLDER_LOCAL and domain.endswith(_PLACEHOLDER_DOMAINS)


def _allowed(domain: str, allow_domains: frozenset[str]) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in allow_domains)


def _emails_in(view: nz.View, allow: frozenset[str]) -> list[Hit]:
    hits: list[Hit] = []
    for m in _EMAIL.finditer(view.text):
        if m.group("tld").lower() not in _COMMON_TLDS and len(m.group("tld")) > 4:
            continue
        if is_placeholder(m.group()) or _allowed(m.group("domain"), allow):
            continue
        hits.append(Hit("contact.email", view, m.start(), m.end()))
    return hits


def find_emails(text: ScanText, allow_domains: frozenset[str]) -> list[Hit]:
    base = text.base
    src = base.text
    if nz.SPELLED_HINT.search(src) is None:
        return []
    hits = _emails_in(base, allow_domains)
    spelled = nz.spelled_email(base, weak_at=False)
    if spelled is not base:
        hits.extend(_emails_in(spelled, allow_domains))
    # A bare " at " is accepted only with a spelled " dot " or a well-known mail provider.
    if re.search(r"(?i)\sdot\s", src) or _FREE_MAIL.search(src):
        weak = nz.spelled_email(base, weak_at=True)
        if weak is not spelled:
            hits.extend(_emails_in(weak, allow_domains))
    if "@" in src:
        for m in _REVERSED.finditer(src):
            forward = m.group()[::-1]
            e = _EMAIL.fullmatch(forward)
            if e and e.group("tld").lower() in _COMMON_TLDS and not is_placeholder(forward):
                if not _allowed(e.group("domain"), allow_domains):
                    hits.append(Hit("contact.email", base, m.start(), m.end()))
    return hits


def find_links(text: ScanText, allow_domains: frozenset[str]) -> Iterable[Hit]:
    base = text.base
    if "/" not in base.text:
        return []
    return [Hit("contact.link", base, m.start(), m.end()) for m in _LINK.finditer(base.text)]
