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
# The well-known mail providers: one list for every check that names them.
_PROVIDERS: Final = (
    r"gmail|googlemail|yahoo|ymail|outlook|hotmail|icloud|proton(?:mail)?|live|aol"
    r"|docomo|ezweb|softbank"
)
_FREE_MAIL: Final = re.compile(r"(?i)(?<![A-Za-z0-9])(?:" + _PROVIDERS + r")(?![A-Za-z0-9])")
# Necessary for `_FREE_MAIL` on the lower-cased text (starts with literals: fast).
_FREE_MAIL_HINT: Final = re.compile(_PROVIDERS)
_SPACED_DOT: Final = re.compile(r"(?i)\sdot\s")
# An address at a provider with the rest of its domain left off ("tanaka@gmail",
# "tanaka アット gmail", "tanaka at gmail com"): everyone knows what follows.
_AT_PROVIDER: Final = re.compile(
    r"(?<![A-Za-z0-9._%+\-])(?P<local>[A-Za-z0-9](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_])?)"
    r"@(?P<provider>" + _PROVIDERS + r")(?![A-Za-z0-9\-@]|\.[A-Za-z0-9])"
    # the rest spelled with spaces ("gmail com", "yahoo co jp"): an address for sure
    r"(?P<tld>\s+(?:com|net|co\s+jp|ne\s+jp|jp)(?![A-Za-z0-9]))?",
    re.IGNORECASE,
)
# After a bare " at ", only providers that are nothing but mail services, and not after an
# ordinary word ("look at gmail", "good at gmail filters", "my emails at gmail").
_WEAK_PROVIDERS: Final = frozenset("gmail googlemail hotmail icloud ymail protonmail".split())
_NOT_LOCAL: Final = frozenset(
    """a an the i me my us our you your him her them it its this that these those there here
    is am are was were be been being and or but not no so also only just all both each
    at on in to of for by via from with into onto using use used uses
    look looks looked looking check checks checked checking glance peek stare
    good great better best bad worse worst expert experts skilled new
    work works worked working team teams people folks staff someone somebody everyone
    anyone engineers developers friends friend colleague colleagues guys
    arrive arrived arrives available account accounts address addresses email emails
    mail mails inbox spam filters filter labels login sign signed signup register
    registered send sent it's i'm ok okay fine stuff things""".split()
)
# "tanaka gmail.com" with no "@" at all: an address only where an account name comes
# before a provider's own domain and a mail word says what it is (or the name looks like
# one: digits, dots or underscores in it).
_PROVIDER_DOMAIN: Final = re.compile(
    r"(?<![A-Za-z0-9._%+\-@])(?P<local>[A-Za-z0-9](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_])?)"
    r"\s+(?P<domain>(?:" + _PROVIDERS + r")\.(?:com|co\.jp|ne\.jp|co\.uk|jp|me|ch))"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])",
    re.IGNORECASE,
)
# Necessary for `_PROVIDER_DOMAIN` on the lower-cased text (starts with literals: fast).
_PROVIDER_DOMAIN_HINT: Final = re.compile(r"(?:" + _PROVIDERS + r")\.(?:com|co|ne|jp|me|ch)")
_MAIL_CUE: Final = re.compile(
    r"(?<![a-z])(?:e-?mail|mail|address|addr)(?![a-z])|メアド|めあど|メール|アドレス"
)
_ACCOUNT_LIKE: Final = re.compile(r"[0-9._]")
_WORDY: Final = re.compile(r"[^\W_]")  # a letter or digit of any script
_POLITE: Final = re.compile(
    r"(?i)\b(?:please|pls|plz|thanks|thank you|thx)\b|です|まで|でお願いします|にお願いします"
    r"|お願いします|よろしく")
_PLACEHOLDER_LOCAL: Final = frozenset(
    "example test user name yourname your.name you me foo bar baz sample dummy noreply "
    "no-reply email mail someone somebody john.doe jane.doe jdoe xxx abc info.example".split()
)
_PLACEHOLDER_DOMAINS: Final = ("example.com", "example.org", "example.net", "example.jp")
# The canonical fake address of code samples and regex tests ("foo@bar.com").
_PLACEHOLDER_HOSTS: Final = frozenset(("bar.com", "foo.com", "foobar.com"))

_LINK: Final = re.compile(
    r"(?i)(?:https?://)?(?:[\w-]+\.)*(?:zoom\.us/(?:j|my|s)/|meet\.google\.com/|discord\.gg/|"
    r"discord(?:app)?\.com/invite/|join\.slack\.com/|line\.me/|lin\.ee/|t\.me/|wa\.me/|"
    r"chat\.whatsapp\.com/|m\.me/|join\.skype\.com/|teams\.microsoft\.com/l/meetup|"
    r"u\.wechat\.com/|open\.kakao\.com/|qr\.kakao\.com/|ig\.me/|signal\.me/)[^\s<>\"'「」）)]*"
)


# Necessary for `_LINK` on the lower-cased text: one of its host parts.
_LINK_HINT: Final = re.compile(
    r"zoom\.us/|meet\.google|discord|slack\.com/|line\.me/|lin\.ee/|t\.me/|wa\.me/|whatsapp\.com/"
    r"|m\.me/|skype\.com/|teams\.microsoft|wechat\.com/|kakao\.com/|ig\.me/|signal\.me/"
)


_SPACE: Final = re.compile(r"\s")
# A Git remote in SSH form, not an address: "git@github.com:acme/shop.git".
_SSH_REMOTE: Final = re.compile(r"git@[A-Za-z0-9.\-]+:[A-Za-z0-9_.~\-]+/")
_MAX_TOKENS: Final = 32


def is_placeholder(address: str) -> bool:
    local, _, domain = address.lower().partition("@")
    if len(local) == 1 and len(domain.partition(".")[0]) == 1:
        return True  # "a@b.co": a form's example, nobody's address
    return local in _PLACEHOLDER_LOCAL and (
        domain.endswith(_PLACEHOLDER_DOMAINS) or domain in _PLACEHOLDER_HOSTS
    )


def _allowed(domain: str, allow_domains: frozenset[str]) -> bool:
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in allow_domains)


def _tokens_with(text: str, needle: str) -> list[tuple[int, int]]:
    """The whitespace-delimited tokens of ``text`` holding ``needle``, in order.

    A pattern that matches no whitespace and only around ``needle`` finds the same
    matches searched token by token (its lookarounds see whitespace or an edge at a token
    edge either way): ``_EMAIL`` and ``_REVERSED`` start with a lookbehind, so searching
    a whole long text for them tries every position.
    """
    out: list[tuple[int, int]] = []
    k = text.find(needle)
    if k < 0:
        return out
    n = len(text)
    rev: str | None = None
    while k >= 0:
        if len(out) == _MAX_TOKENS:  # an odd text: search it whole, in one call
            return [(0, n)]
        if rev is None:
            rev = text[::-1]
        before = _SPACE.search(rev, n - k)  # the last whitespace before k
        lo = 0 if before is None else n - before.start()
        after = _SPACE.search(text, k)
        hi = n if after is None else after.start()
        out.append((lo, hi))
        k = text.find(needle, hi)
    return out


def _emails_in(view: nz.View, allow: frozenset[str]) -> list[Hit]:
    hits: list[Hit] = []
    text = view.text
    for lo, hi in _tokens_with(text, "@"):
        hits.extend(_emails_between(view, lo, hi, allow))
    return hits


def _emails_between(view: nz.View, lo: int, hi: int, allow: frozenset[str]) -> list[Hit]:
    hits: list[Hit] = []
    for m in _EMAIL.finditer(view.text, lo, hi):
        if m.group("tld").lower() not in _COMMON_TLDS and len(m.group("tld")) > 4:
            continue
        if is_placeholder(m.group()) or _allowed(m.group("domain"), allow):
            continue
        if _SSH_REMOTE.match(view.text, m.start(), hi):  # git@github.com:acme/shop.git
            continue
        hits.append(Hit("contact.email", view, m.start(), m.end()))
    return hits


def _provider_addresses(view: nz.View, *, weak: bool) -> list[Hit]:
    """``local@provider`` with no top-level domain (see `_AT_PROVIDER`). ``weak``: the "@"
    may be a rewritten bare " at ", so no `_NOT_LOCAL` word before it, a provider of
    `_WEAK_PROVIDERS` unless the name looks like an account (`_ACCOUNT_LIKE`), and a mail
    word in the text (`_MAIL_CUE`) or nothing else on its line, unless it does ("the SMTP
    relay at gmail rejects large files" is work talk)."""
    hits: list[Hit] = []
    text = view.text
    cue: bool | None = None
    for lo, hi in _tokens_with(text, "@"):
        # (a little past the token: the rest may follow, spelled with spaces)
        for m in _AT_PROVIDER.finditer(text, lo, hi + 8):
            if m.start() >= hi:
                break
            local = m.group("local").lower()
            if local in _PLACEHOLDER_LOCAL:
                continue
            provider = m.group("provider").lower()
            named = (_ACCOUNT_LIKE.search(local) is not None and len(local) >= 3) or bool(
                m.group("tld"))
            if provider == "live" and not named:  # "main@live": a word too
                continue
            if weak:
                if local in _NOT_LOCAL or len(local) < 3:
                    continue
                if not named:
                    if provider not in _WEAK_PROVIDERS:
                        continue
                    if cue is None:
                        cue = _MAIL_CUE.search(text.lower()) is not None
                    if not cue and not _alone_on_its_line(text, m.start(), m.end()):
                        continue
            hits.append(Hit("contact.email", view, m.start(), m.end()))
    return hits


def _alone_on_its_line(text: str, start: int, end: int) -> bool:
    """Nothing but whitespace and punctuation around ``text[start:end]`` on its line."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    rest = text[line_start:start] + text[end:len(text) if line_end < 0 else line_end]
    return _WORDY.search(_POLITE.sub("", rest)) is None


def _provider_domains(view: nz.View, low: str) -> list[Hit]:
    """``local provider.tld`` with no "@" (see `_PROVIDER_DOMAIN`); ``low``: the view's
    text lower-cased."""
    hits: list[Hit] = []
    cue: bool | None = None
    for m in _PROVIDER_DOMAIN.finditer(view.text):
        local = m.group("local").lower()
        if local in _NOT_LOCAL or local in _PLACEHOLDER_LOCAL:
            continue
        if _ACCOUNT_LIKE.search(local) is None or len(local) < 3:
            if cue is None:
                cue = _MAIL_CUE.search(low) is not None
            if not cue:
                continue
        hits.append(Hit("contact.email", view, m.start(), m.end()))
    return hits


def _weak_at_fits(src: str, low: str | None) -> bool:
    """A bare " at " is accepted only with a spelled " dot " or a well-known mail provider
    (``low``: `normalize.hint_lower` of ``src`` if known, to skip the searches)."""
    return bool(
        ((low is None or "dot" in low) and _SPACED_DOT.search(src))
        or ((low is None or _FREE_MAIL_HINT.search(low)) and _FREE_MAIL.search(src))
    )


def find_emails(text: ScanText, allow_domains: frozenset[str]) -> list[Hit]:
    base = text.base
    src = base.text
    low = text.base_lower
    provider_low = src.lower() if low is None else low
    # (substring tests first: most texts hold none of the domains' endings)
    hits = (
        _provider_domains(base, provider_low)
        if (".co" in provider_low or ".jp" in provider_low or ".me" in provider_low
            or ".ch" in provider_low) and _PROVIDER_DOMAIN_HINT.search(provider_low) is not None
        else []
    )
    if not nz.may_spell_email(src, low):
        return hits
    hits.extend(_emails_in(base, allow_domains))
    spelled = nz.spelled_email(base, weak_at=False, low=low)
    if spelled is not base:
        hits.extend(_emails_in(spelled, allow_domains))
    if "@" in spelled.text:
        hits.extend(_provider_addresses(spelled, weak=False))
    # Letters spaced out or dotted ("t a n a k a ＠ g m a i l . c o m"): the address is
    # whole only once they are joined (hits the base view also gave are deduplicated).
    squeezed = text.squeezed if text.squeezed is not base else None
    if squeezed is not None:
        hits.extend(_emails_in(nz.spelled_email(squeezed, weak_at=False), allow_domains))
    if _weak_at_fits(src, low):
        weak = nz.spelled_email(base, weak_at=True, low=low)
        if weak is not spelled:
            hits.extend(_emails_in(weak, allow_domains))
            hits.extend(_provider_addresses(weak, weak=True))
    if squeezed is not None and _weak_at_fits(squeezed.text, None):
        hits.extend(_emails_in(nz.spelled_email(squeezed, weak_at=True), allow_domains))
    for lo, hi in _tokens_with(src, "@"):
        for m in _REVERSED.finditer(src, lo, hi):
            forward = m.group()[::-1]
            e = _EMAIL.fullmatch(forward)
            if e and e.group("tld").lower() in _COMMON_TLDS and not is_placeholder(forward):
                if not _allowed(e.group("domain"), allow_domains):
                    hits.append(Hit("contact.email", base, m.start(), m.end()))
    return hits


def find_links(text: ScanText, allow_domains: frozenset[str]) -> Iterable[Hit]:
    base = text.base
    src = base.text
    if "/" not in src:
        return []
    low = text.base_lower
    if low is None:
        return [Hit("contact.link", base, m.start(), m.end()) for m in _LINK.finditer(src)]
    # A link holds no whitespace and contains one of the hint literals: search only the
    # whitespace-delimited tokens around hint occurrences (same matches, linear time).
    hits: list[Hit] = []
    done = 0
    n = len(src)
    rev: str | None = None
    for h in _LINK_HINT.finditer(low):
        if h.start() < done:
            continue
        if rev is None:
            rev = src[::-1]
        lo = _SPACE.search(rev, n - h.start())  # the last whitespace before the hint
        token_lo = 0 if lo is None else n - lo.start()
        hi = _SPACE.search(src, h.start())
        token_hi = hi.start() if hi is not None else n
        if token_lo < done:
            token_lo = done
        hits.extend(
            Hit("contact.link", base, m.start(), m.end())
            for m in _LINK.finditer(src, token_lo, token_hi)
        )
        done = token_hi
    return hits
