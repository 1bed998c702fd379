"""The message scanner: runs every detector over a window of one sender's messages.

Theory of operation: the current message and up to `MAX_HISTORY` previous messages of the
same sender are joined with ``\\n`` into one text, so a phone number, email or ID spread
over several messages reads as one. Split evasions are short fragments, so a previous
message contributes only its last `HISTORY_TAIL_CHARS` characters, a longer one ends the
look-back, and so does `HISTORY_BUDGET_CHARS` of them in all: a scan costs about the same
whatever the sender wrote before.  Each detector reports hits on a normalized view; hits
are mapped back to the joined original, cut at message boundaries and turned into
`Finding` records.  Only hits that touch the current message are reported (older ones
were reported when those messages were sent); a hit that spans messages is reported once
per message it touches.  No I/O happens here.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Final

from moderation import lexicon as lx
from moderation.contacts import find_emails, find_links
from moderation.context import Hit, ScanText
from moderation.findings import Finding, make_finding
from moderation.gate import Gate, Prefiltered
from moderation.normalize import base, deleet, identity, left_bounded, squeeze
from moderation.phones import find_phones
from moderation.rules import CUE_RULES, RULES

MAX_HISTORY: Final = 12  # a number sent digit by digit takes 10-11 messages
HISTORY_TAIL_CHARS: Final = 64  # of each previous message, for split evasions
HISTORY_BUDGET_CHARS: Final = 320  # of all previous messages together

# Combining marks (dropped by `normalize.base`): a span takes those after its end too.
_MARK: Final = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_MARK_RUN: Final = re.compile(_MARK.pattern + "*")
_QUOTED: Final = Prefiltered(re.compile(lx.QUOTED))
_ID_NEXT: Final = re.compile(lx.APP_ID_NEXT)
_ID_FOLLOWS: Final = re.compile(lx.APP_ID_FOLLOWS)
# A word that is no ordinary one right after the app name ("my LINE is kotaro",
# "LINEはkotaroです"): intent, like a handle.
_WORD_ID_NEXT: Final = re.compile(lx.APP_WORD_ID_NEXT)
FOLLOW_REACH: Final = 60  # an ID in a later sentence: at most this far after the app name
# Any app name (keyword view), LINE, Slack, Signal, Outlook in any case: another app
# between a name and an ID.
_ANY_APP: Final = lx.compile_lower(
    r"(?<![a-z0-9])(?:" + lx.APPS + r"|l[il]ne(?![a-z0-9\-])|(?:slack|signal|outlook)(?![a-z0-9]))"
)
# A handle right after the app name (spaces or a newline between): a letter and a digit/_.
_HANDLE_NEXT: Final = re.compile(
    r"\s+@?(?P<id>(?=[a-z0-9._\-]*[a-z])(?=[a-z0-9._\-]*[0-9_])[a-z0-9][a-z0-9._\-]{2,})"
    r"(?![a-z0-9._\-@])"
)
# The handle before the app name: "kota_77 is my LINE".
_ID_BEFORE: Final = re.compile(
    r"(?<![a-z0-9._\-@])@?(?P<id>(?=[a-z0-9._\-]*[a-z])(?=[a-z0-9._\-]*[0-9_])"
    r"[a-z0-9][a-z0-9._\-]{2,})\s+(?:is|=)\s+(?:my|our)\s+$"
)
# The label of an ID that names something else than the app's account (keyword view, so
# "ｉｄ" is "id"): "注文ID: 12345", "チケットIDは PRJ_123", "order id: abc_123" after an app
# name is an order's, a ticket's, not a messenger ID.
_QUALIFIED_ID: Final = re.compile(
    r"(?:注文|案件|取引|契約|請求|商品|会員|予約|伝票|チケット|問い?合わ?せ|発注|見積|"
    r"(?<![a-z])(?:order|ticket|invoice|project|job|transaction|booking|tracking|item|"
    r"product|customer|contract|reference|ref))"
    r"\s*(?:id|番号|no\.?|#)\s*(?:は|:|：|=|is)?\s*[「『\"'(（]?\s*$"
)
_REFUSAL: Final = Prefiltered(re.compile(lx.REFUSAL, re.IGNORECASE))
_GATE: Final = Gate([r.anchor.pattern for r in CUE_RULES], [r.cased for r in CUE_RULES])


def _prefiltered(patterns: list[re.Pattern[str] | None]) -> list[Prefiltered | None]:
    shared: dict[int, Prefiltered] = {}
    out: list[Prefiltered | None] = []
    for p in patterns:
        if p is None:
            out.append(None)
        else:
            out.append(shared.setdefault(id(p), Prefiltered(p)))
    return out


_CUES: Final = _prefiltered([r.cue for r in CUE_RULES])
_BLOCKS: Final = _prefiltered([r.block for r in CUE_RULES])


def _norm_phrase(phrase: str) -> str:
    return deleet(squeeze(base(identity(phrase)))).text.strip()


def look_back(history: Sequence[str], max_history: int) -> tuple[list[str], list[int]]:
    """The parts of ``history`` (oldest first) joined before the current message, oldest
    first, and where each was cut: at most ``max_history`` messages, only the last
    `HISTORY_TAIL_CHARS` characters of each, none before a longer one, and none once
    `HISTORY_BUDGET_CHARS` are taken."""
    parts: list[str] = []
    cuts: list[int] = []
    taken = 0
    for message in reversed(history[max(0, len(history) - max_history):]):
        if taken >= HISTORY_BUDGET_CHARS:
            break
        cut = max(0, len(message) - HISTORY_TAIL_CHARS)
        parts.append(message[cut:])
        cuts.append(cut)
        if cut:
            break
        taken += len(message)
    parts.reverse()
    cuts.reverse()
    return parts, cuts


class Scanner:
    """Finds contact exchange, off-platform deals, personal-data requests and expense demands.

    ``allow_domains``: email/link domains that are never reported (the platform's own,
    e.g. ``example-platform.jp``; subdomains included).  ``allow_phrases``: phrases
    (matched case-insensitively after normalization) inside which nothing is reported.
    """

    def __init__(
        self,
        *,
        allow_domains: Iterable[str] = (),
        allow_phrases: Iterable[str] = (),
        max_history: int = MAX_HISTORY,
    ) -> None:
        self._allow_domains = frozenset(d.lower().strip().lstrip("@.") for d in allow_domains)
        phrases = [p for p in (_norm_phrase(p) for p in allow_phrases) if p]
        self._allow_phrases: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(p) for p in phrases), re.IGNORECASE) if phrases else None
        )
        self._max_history = max(0, max_history)

    def scan(self, text: str, history: Sequence[str] = ()) -> list[Finding]:
        """Scan ``text`` (the current message) in the light of ``history`` (oldest first).

        Findings in the current message have ``message_index == len(history)``.
        """
        if not history or not self._max_history:
            first = len(history)
            window = [text]
            cuts = [0]
            offsets = [0]
            st = ScanText(text)
        else:
            # Split evasions are short fragments ("090", "5555", "1234"): a previous message
            # contributes at most its last HISTORY_TAIL_CHARS characters, and a longer one
            # ends the look-back (it was scanned whole when it was sent). So the joined text
            # stays small and the cost of a scan does not grow with the sender's history.
            window, cuts = look_back(history, self._max_history)
            first = len(history) - len(window)
            window.append(text)
            cuts.append(0)
            offsets = []
            pos = 0
            for message in window:
                offsets.append(pos)
                pos += len(message) + 1
            st = ScanText("\n".join(window))
        current_start = offsets[-1]
        # Hits that end before the current message are dropped below; cue checks are
        # skipped for those anchors (see `_cue_hits`).
        before = current_start if len(window) > 1 else 0

        hits = find_emails(st, self._allow_domains)
        if "/" in st.base.text:
            hits.extend(find_links(st, self._allow_domains))
        hits.extend(find_phones(st))
        kw = st.kw.text
        cased = st.cased.text
        checks: _Checks | None = None
        for i in _GATE.always(kw, cased):
            rule = CUE_RULES[i]
            found = list(rule.anchor.finditer(cased if rule.cased else kw))
            if found:
                if checks is None:
                    checks = _Checks(st)
                _cue_hits(st, i, found, checks, hits, before)
        # Each rule's anchor is tried only where one of its literal prefixes starts, in
        # order, skipping places inside its previous match (`gate.first_matches`).
        current = -1
        found = []
        match = CUE_RULES[0].anchor.match  # set for each rule below
        src = kw
        after = 0
        for i, pos in _GATE.starts(kw):
            if i != current:
                if found:
                    if checks is None:
                        checks = _Checks(st)
                    _cue_hits(st, current, found, checks, hits, before)
                    found = []
                current = i
                rule = CUE_RULES[i]
                match = rule.anchor.match
                src = cased if rule.cased else kw
                after = 0
            if pos >= after:
                m = match(src, pos)
                if m is not None:
                    found.append(m)
                    after = m.end()
        if found:
            if checks is None:
                checks = _Checks(st)
            _cue_hits(st, current, found, checks, hits, before)
        if not hits:
            return []

        allowed = self._allowed_spans(st) if self._allow_phrases is not None else None
        spans: dict[tuple[str, int, int], None] = {}
        original = st.original
        marks = not original.isascii() and _MARK.search(original) is not None
        for rule_id, view, start, end in hits:
            o_start, o_end = view.span(start, end)
            if marks:  # combining marks after the last character belong to it
                o_end = _MARK_RUN.match(original, o_end).end()  # type: ignore[union-attr]
            if o_end <= current_start or o_end <= o_start:
                continue
            if allowed and any(a <= o_start and o_end <= b for a, b in allowed):
                continue
            spans[(rule_id, o_start, o_end)] = None
        if len(window) == 1:
            return _single_findings(_dedupe(list(spans)) if len(spans) > 1 else list(spans), first)
        return self._findings(_dedupe(list(spans)), offsets, window, first, cuts)

    def _allowed_spans(self, st: ScanText) -> list[tuple[int, int]]:
        if self._allow_phrases is None:
            return []
        kw = st.kw
        return [kw.span(m.start(), m.end()) for m in self._allow_phrases.finditer(kw.text)]

    @staticmethod
    def _findings(
        spans: list[tuple[str, int, int]], offsets: list[int], window: list[str], first: int,
        cuts: list[int],
    ) -> list[Finding]:
        out: list[Finding] = []
        for rule, o_start, o_end in spans:
            info = RULES[rule]
            explanation = _EXPLANATIONS[rule]
            for i, m_start in enumerate(offsets):
                m_end = m_start + len(window[i])
                lo, hi = max(o_start, m_start), min(o_end, m_end)
                if lo < hi or (lo == hi == o_start and m_start <= lo <= m_end and o_start == o_end):
                    out.append(
                        Finding(
                            category=info.category,
                            rule=rule,
                            start=lo - m_start + cuts[i],
                            end=hi - m_start + cuts[i],
                            message_index=first + i,
                            severity=info.severity,
                            explanation=dict(explanation),
                        )
                    )
        out.sort(key=lambda f: (f.message_index, f.start, f.end, f.rule))
        return out


_EXPLANATIONS: Final = {rule: {"ja": info.ja, "en": info.en} for rule, info in RULES.items()}
_BY_POSITION: Final = itemgetter(1, 2, 0)  # (rule, start, end) spans by start, end, rule


def _single_findings(spans: list[tuple[str, int, int]], index: int) -> list[Finding]:
    """`Scanner._findings` for a window of one message (no offsets to cut at)."""
    spans.sort(key=_BY_POSITION)
    out: list[Finding] = []
    for rule, start, end in spans:
        info = RULES[rule]
        out.append(
            make_finding(
                info.category, rule, start, end, index, info.severity, dict(_EXPLANATIONS[rule])
            )
        )
    return out


def _dedupe(spans: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Drop a span contained in another span of the same rule."""
    spans.sort(key=lambda s: (s[0], s[1], -s[2]))
    out: list[tuple[str, int, int]] = []
    for rule, start, end in spans:
        if out and out[-1][0] == rule and out[-1][1] <= start and end <= out[-1][2]:
            continue
        out.append((rule, start, end))
    return out


class _Checks:
    """Per-scan memo of the sentence-level checks several rules share.

    Each anchor match is checked against its sentence (or clause); a sentence can hold
    many matches (a long unpunctuated message repeating an app name), so whatever depends
    only on the sentence is computed once per sentence: then a scan's cost grows with the
    text, not with matches times sentence length (10,000 characters of "my LINE is
    kotaro ..." took 1.8 s of the event loop before).
    """

    __slots__ = ("_clause_ends", "_found", "_quotes", "_wide", "plain_lower", "sentences")

    def __init__(self, st: ScanText) -> None:
        self.plain_lower = st.kw_plain
        self.sentences = st.sentences(st.kw)  # of the keyword view
        self._found: dict[tuple[int, int, int], bool] = {}  # (pattern, lo, hi) -> found
        self._wide: dict[int, bool] = {}
        self._clause_ends: dict[tuple[int, int], tuple[list[int], list[int], list[str]]] = {}
        self._quotes: dict[tuple[int, int], tuple[list[int], list[int]]] = {}

    def wide_blocked(self, pattern: re.Pattern[str], text: str, plain: bool) -> bool:
        found = self._wide.get(id(pattern))
        if found is None:
            pre = _WIDE.get(id(pattern))
            if pre is None:
                pre = _WIDE[id(pattern)] = Prefiltered(pattern)
            found = self._wide[id(pattern)] = pre.exists(text, plain_lower=plain)
        return found

    def exists(self, pattern: Prefiltered, text: str, lo: int, hi: int) -> bool:
        """Whether ``pattern`` occurs in ``[lo, hi)`` (a sentence or clause; a rule's block
        words, a refusal), asked once per range whatever the number of matches in it."""
        key = (id(pattern), lo, hi)
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = pattern.exists(text, lo, hi, plain_lower=self.plain_lower)
        return found

    def clause(self, text: str, lo: int, hi: int, a: int, b: int) -> tuple[int, int]:
        """The clause of the sentence ``[lo, hi)`` holding the match ``[a, b)``: from the
        end of the last clause end before it to the first clause end after it, a clause
        end that follows the match's topic closely ("直接契約は、…") not counting; the
        sentence's clause ends are found once."""
        ends = self._clause_ends.get((lo, hi))
        if ends is None:
            found = list(_CLAUSE_END.finditer(text, lo, hi))
            ends = self._clause_ends[(lo, hi)] = (
                [m.start() for m in found], [m.end() for m in found], [m.group() for m in found])
        starts, stops, groups = ends
        # the last clause end that lies wholly before ``a`` (finditer(text, lo, a) saw the
        # same matches: a clause end is at most a few characters long and cannot match
        # across ``a`` differently, as the anchor at ``a`` is a word)
        i = bisect_right(stops, a) - 1
        c_lo = stops[i] if i >= 0 else lo
        j = bisect_left(starts, b)
        while (
            j < len(starts)
            and groups[j] in _TOPIC_COMMAS
            and starts[j] - b <= _TOPIC_REACH
            and _TOPIC.search(text, b, starts[j])
        ):
            j += 1
        return c_lo, hi if j >= len(starts) else starts[j]

    def inside_quotes(self, text: str, lo: int, hi: int, a: int, b: int) -> bool:
        """Whether ``[a, b)`` lies strictly inside a quotation of the sentence ``[lo, hi)``."""
        quotes = self._quotes.get((lo, hi))
        if quotes is None:
            if not _QUOTED.exists(text, lo, hi):
                quotes = ([], [])
            else:
                found = list(_QUOTED.pattern.finditer(text, lo, hi))
                quotes = ([q.start() for q in found], [q.end() for q in found])
            self._quotes[(lo, hi)] = quotes
        starts, ends = quotes
        # quotations do not overlap: only the last one starting before ``a`` can hold it
        i = bisect_left(starts, a) - 1
        return i >= 0 and b < ends[i]


# Where a clause ends: a refusal in another clause of the sentence ("ここでは詳しくお話し
# できませんので、LINEで…", "I can't use this chat well, add me on LINE") is about something
# else and does not excuse the proposal.  から ends a clause only as "because", after a
# predicate ("できないから", "ですから"), not as a particle ("LINEからのご連絡は…").
_CLAUSE_END: Final = re.compile(
    r"[、,;；—–]|ので|(?<=[すただいるうくぐぬむぶつ])から|けど|けれど|"
    + left_bounded(("but", "so", "because"), "[a-z]") + r"(?![a-z])"
)
# The proposal is the topic of what follows the comma ("直接契約は、規約上できません",
# "LINE IDは、お伝えできかねます"): its clause goes on past it.
_TOPIC: Final = re.compile(r"(?:は|では|には|については|って|なら)\s*$")
_TOPIC_COMMAS: Final = frozenset("、,")
_TOPIC_REACH: Final = 12


_WIDE: dict[int, Prefiltered] = {}


def _word_start(text: str, a: int) -> bool:
    """Anchors carry no left word boundary (speed); check it here for Latin letters."""
    if a == 0:
        return True
    first, before = text[a], text[a - 1]
    return not (first.isascii() and first.isalnum() and before.isascii() and before.isalnum())


def _id_limit(text: str, b: int, window: int) -> int:
    """Where an ID shared with the app name ending at ``b`` may end: within ``window``
    characters, in the app name's line or the next one (the sender's next message)."""
    line_end = text.find("\n", b)
    if line_end >= 0:
        line_end = text.find("\n", line_end + 1)
    return min(b + window, len(text) if line_end < 0 else line_end)


def _cue_hits(
    st: ScanText, index: int, found: list[re.Match[str]], checks: _Checks, hits: list[Hit],
    before: int = 0,
) -> None:
    """Append to ``hits`` the anchor matches ``found`` of rule ``index`` that pass its checks.

    ``before``: the original offset where the current message starts in a window of
    several messages (0 for one message).  When every hit a match can give (the anchor's,
    and an ID's up to `_id_limit`) ends, in the original, before ``before``, `Scanner.scan`
    drops them all (combining marks after a hit do not reach past the ``\\n`` ahead of the
    current message; a view maps offsets in order), so the match's checks, which have no
    effect but their memo, are skipped.
    """
    rule = CUE_RULES[index]
    cue, block = _CUES[index], _BLOCKS[index]
    plain = checks.plain_lower
    view = st.kw
    text = view.text
    bounds = checks.sentences.bounds
    # How far a hit of this rule can reach past its anchor: an ID is looked for up to
    # `_id_limit` (within the window or FOLLOW_REACH, and the next line).
    reach = -1 if rule.id_pattern is None else max(rule.window, FOLLOW_REACH)
    for m in found:
        a, b = m.span()
        if before and view.span(a, b if reach < 0 else _id_limit(text, b, reach))[1] < before:
            continue
        if not _word_start(text, a):
            continue
        lo, hi = bounds(a, b)
        id_before: re.Match[str] | None = None
        id_follows: re.Match[str] | None = None
        if cue is not None:
            c_lo, c_hi = (0, len(text)) if rule.cross_sentence else (lo, hi)
            c_lo, c_hi = max(c_lo, a - rule.window), min(c_hi, b + rule.window)
            if not cue.exists(text, c_lo, c_hi, plain_lower=plain):
                # A handle given with the app name is intent enough: "LINE kota_77" (also
                # split over two messages), "kota_77 is my LINE", "my LINE is kotaro",
                # "LINEはkotaroです"; so is an ID given or
                # promised in a later sentence: "LINEならできます。IDは tanaka_1988 です",
                # "LINE works. I'll send my ID".
                if rule.id_pattern is None:
                    continue
                id_before = _ID_BEFORE.search(text, max(0, a - rule.window), a)
                next_end = min(len(text), b + rule.window)
                if (
                    id_before is None
                    and not _HANDLE_NEXT.match(text, b, next_end)
                    and not _WORD_ID_NEXT.match(text, b, next_end)
                ):
                    id_follows = _ID_FOLLOWS.search(text, hi, _id_limit(text, b, FOLLOW_REACH))
                    # the ID is the nearest app's ("no Skype, but LINE works. My ID is ...")
                    if id_follows is None or _ANY_APP.search(text, b, id_follows.start()):
                        continue
        if block is not None and checks.exists(block, text, lo, hi):
            continue
        if rule.wide_block is not None and checks.wide_blocked(rule.wide_block, text, plain):
            continue
        if rule.refusable and checks.exists(_REFUSAL, text, *checks.clause(text, lo, hi, a, b)):
            continue
        if rule.skip_quoted and checks.inside_quotes(text, lo, hi, a, b):
            continue
        hits.append(Hit(rule.rule, view, a, b))
        if rule.id_pattern is not None:
            # The ID shared with the app name (its own finding, so masking hides it too):
            # right after the name, or behind a marker (":", "ID は", "is") further on in
            # the line, within the rule's window.
            # (The line after the app name's line too: the sender's next message.)
            limit = _id_limit(text, b, rule.window)
            id_found: re.Match[str] | None
            if id_follows is not None:  # the ID given later (None when only promised)
                id_found = id_follows if id_follows.group("id") else None
            else:
                id_found = id_before or _ID_NEXT.match(text, b, limit) or rule.id_pattern.search(
                    text, b, limit
                )
            group = "id" if id_found is not None and id_found.group("id") else "handle"
            if id_found is not None and not _QUALIFIED_ID.search(
                text, max(0, id_found.start() - 24), id_found.start(group)
            ):
                hits.append(
                    Hit("contact.messenger_id", view, id_found.start(group), id_found.end(group))
                )
        for extra in rule.also:
            hits.append(Hit(extra, view, a, b))
