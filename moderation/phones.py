"""Phone number detector: digit runs on the digits view, checked with ``phonenumbers``.

Runs of digit groups (separated by spaces, dashes, dots, brackets, 、・ or newlines between
messages) are cut into candidates of 10–15 digits.  A candidate counts when:

* it starts with ``+``: a valid or possible international number;
* it starts with ``0``: a valid Japanese number (region JP), or a UK mobile ``07…`` near a
  phone word;
* otherwise: a valid North American number written 3-3-4 or near a phone word.

A number right behind its own label (``注文番号: …``, ``order #…``) is ignored unless a phone
word (電話, TEL, call, text me, 携帯…) is in the sentence; amounts with thousands separators
("3,125,550,123") are never phone numbers.  A number the sentence denies is a phone number
(the denial next to it), or a company-format number in a clear data-entry task with no
first person, contact verb or bare 電話番号 in the sentence, is ignored too.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from functools import lru_cache
from typing import Final

import phonenumbers

from moderation.context import Hit, ScanText
from moderation.gate import Prefiltered
from moderation.lexicon import word
from moderation.normalize import _EN_HINT, left_bounded

# A run of digit groups: ``(?<![A-Za-z0-9/#=_.\-])(\+\s?)?\(?\d+(?:SEP{1,3}\(?\d+\)?)*``
# then no letter or digit; written to start with its first character (+, ( or a digit)
# so the regex engine skips ahead to it, the left edge checked by a lookbehind after it.
_GROUPS: Final = re.compile(
    r"[+(\d](?<![A-Za-z0-9/#=_.\-].)(?:(?<=\+)\s?\(?\d+|(?<=\()\d+|(?<=\d)\d*)"
    r"(?:[\s\-.()・、,/|ーの]{1,3}\(?\d+\)?)*(?![A-Za-z0-9])"
)
# Thousands separators: an amount or a count ("3,125,550,123"), not a phone number.
_THOUSANDS: Final = re.compile(r"\d{1,3}(?:,\d{3})+|\d{1,3}(?:\.\d{3}){2,}")
# The number is data the worker handles (a public company number to enter, test data for a
# phone field), not the sender's own.  Only a clear data-entry task counts ("test data",
# "spreadsheet", 代表番号; not 一覧/リスト/record/sheet, which also label one's own number),
# only for a company-format number (a landline or free dial, not a mobile), and only when
# no first-person word, contact verb or bare phone word points at it ("電話番号一覧: 090…",
# "連絡先リスト 090… に登録して" are caught).
# (Literals first, no left boundary: the regex engine skips ahead to them.)
_DATA: Final = re.compile(
    r"(?:test data|sample data|dummy|placeholder|fields?|from (?:the|their|its) (?:website|site)|"
    r"company'?s|companies'?|spreadsheet|csv|database|format)(?![a-z])"
    + r"|テストデータ|サンプルデータ|ダミー|入力欄|代表番号|公式サイト|スプレッドシート"
    r"|表示形式|フォーマット",
    re.IGNORECASE,
)
_DATA_HINTED: Final = Prefiltered(_DATA)
_FIRST_PERSON: Final = re.compile(
    word(r"me|my|mine|i|i'm|i'll|us|our|call|text|contact|reach|ring|register|sms|whatsapp")
    + r"|私|僕|わたし|俺|弊社|当方|お電話|ご連絡|までご|連絡|登録|電話して"
    r"|(?<!代表)(?<!各社の)(?<!会社の)(?<!企業の)電話番号"
    # the field, not someone's number ("電話番号の表示形式は03-1234-5678のように")
    r"(?!の(?:表示形式|フォーマット|入力欄))",
    re.IGNORECASE,
)
# The number is labelled as not a phone number: the denial right before it ("Not a phone
# number: 0901234…") or after it in its sentence ("080-5521-3390 … they're SKUs, not phone
# numbers"); not a denial taken back before the number ("Not a phone number, just kidding:
# 090…").
_DENIED: Final = re.compile(
    r"(?:not|n't|never) (?:a |real |actual )?(?:phone|telephone) numbers?(?![a-z])"
    + r"|電話番号(?:では|じゃ)(?:なく|ない|ありません)",
    re.IGNORECASE,
)
_DENIED_BEFORE: Final = re.compile(r"(?:" + _DENIED.pattern + r")[\s:：=\-—(（]*$", re.IGNORECASE)
_GROUP: Final = re.compile(r"\d+")
_PHONE_WORDS: Final = Prefiltered(re.compile(
    word(r"call|phone|tel|text|sms|number|whatsapp|signal|viber|telegram|mobile|cell|reach|"
         r"contact|ring|dial")
    + r"|電話|番号|携帯|ショートメール|連絡|ＳＭＳ|TEL",
    re.IGNORECASE,
))
# The label of a number that is not a phone, right before it ("注文番号: 0901234…",
# "order #0901234…"): only the number's own label exempts it, not the word anywhere in
# the sentence.
_NOT_PHONE: Final = re.compile(
    "(?:" + word(r"order|orders|sku|skus|product codes?|item|invoice|tracking|serial|ref|"
                 r"reference|zip|postcode|postal|isbn|jan|ean|barcode|worker id|member id|"
                 r"account id|ticket|build|batch")
    + r"|注文番号|商品コード|品番|型番|伝票|追跡番号|会員番号|郵便番号|請求書番号|管理番号|受付番号"
    r"|ビルド番号|バッチ番号)"
    # "is" as well as は ("the order number is 0901…", "注文番号は0901…")
    r"(?:\s*(?:no\.?|nos\.?|numbers?|ids?|codes?|番号))?\s*(?:[:：#＃=は.]|is(?![a-z]))?\s*"
    r"[#＃]?\s*(?:no\.?\s*)?$",
    re.IGNORECASE,
)
_LABEL_REACH: Final = 40
# How far from a number a denial ("this is not a phone number", "電話番号ではありません")
# is looked for in its sentence: far beyond any real one, and a bound on the work a long
# sentence full of numbers costs (each number looks around itself, not the whole sentence).
_DENIAL_REACH: Final = 200
# A phone word in the sentence: the number is a phone number whatever label it has.
_STRONG_PHONE: Final = re.compile(
    word(r"call|phone|tel|text me|sms|whatsapp|mobile|cell") + r"|電話|携帯|ケータイ|ＴＥＬ|℡",
    re.IGNORECASE,
)
# Fast path: without digits or number words there is no phone number to find.  Each
# pattern starts with a character class or literals so the regex engine skips ahead fast.
_SIX_ASCII_DIGITS: Final = re.compile(r"[0-9](?:[^0-9]{0,4}[0-9]){5}")  # in ASCII text
_KANJI_DIGIT: Final = "〇零一壱二弐三参四五伍六七八九"


def _six_digits_or_kanji_pair(digits: str) -> re.Pattern[str]:
    """Six digits close together (``\\d(?:\\D{0,4}\\d){5}``) or a pair of kanji digits, in
    one pass: both start with a character of one class (rare in text: the engine skips
    ahead). ``digits``: the class of the digits to count (``\\d`` or ``0-9``)."""
    d, k = f"[{digits}]", f"[{_KANJI_DIGIT}]"
    return re.compile(f"[{digits}{_KANJI_DIGIT}](?:(?<={d})(?:[^{digits}]{{0,4}}{d}){{5}}|(?<={k}){k})")


_SIX_DIGITS_OR_KANJI_PAIR: Final = _six_digits_or_kanji_pair(r"\d")
# The same for a text whose only digits are 0-9 (a class of ASCII digits is much cheaper
# for the regex engine to test at each character than ``\d``).
_SIX_ASCII_DIGITS_OR_KANJI_PAIR: Final = _six_digits_or_kanji_pair("0-9")
_KANA_NUMBER: Final = re.compile(
    r"ぜろ|ゼロ|れい|いち|イチ|きゅう|キュウ|キュー|はち|ハチ|なな|ナナ|ろく|ロク|よん|ヨン|ごー|ゴー"
)
# A number word not preceded or followed by an ASCII letter or digit.
_EN_NUMBER_WORDS: Final = tuple("zero oh one two three four five six seven eight nine".split())
_EN_NUMBER: Final = re.compile(left_bounded(_EN_NUMBER_WORDS, "[a-z0-9]") + "(?![a-z0-9])")
_DIGIT: Final = re.compile(r"\d")
MIN_DIGITS: Final = 10
MAX_DIGITS: Final = 15


@lru_cache(maxsize=4096)
def _is_phone(digits: str, plus: bool, shaped: bool, near_word: bool) -> bool:
    """Whether a 10-15 digit candidate is a phone number (memoized: parsing with
    ``phonenumbers`` costs far more than the rest of a scan, and the same numbers come back
    as the sender's history is scanned again with each new message)."""
    try:
        if plus:
            num = phonenumbers.parse("+" + digits, None)
            return bool(phonenumbers.is_valid_number(num)) or (
                phonenumbers.is_possible_number(num) and len(digits) >= 11
            )
        if digits[0] == "0":
            if phonenumbers.is_valid_number(phonenumbers.parse(digits, "JP")):
                return True
            return near_word and len(digits) == 11 and digits.startswith("07")
        if digits[0] == "1" and len(digits) == 11:
            digits = digits[1:]
        if len(digits) == 10 and (shaped or near_word):
            return bool(phonenumbers.is_valid_number(phonenumbers.parse(digits, "US")))
    except phonenumbers.NumberParseException:
        return False
    return False


# The subscriber digits of the example numbers forms and specs use ("090-1234-5678",
# "080-0000-0000"): a mobile number that is nobody's, in a data-entry context only.
_DUMMY_ENDINGS: Final = ("12345678", "00000000", "11111111", "98765432", "87654321", "23456789")


@lru_cache(maxsize=1024)
def _company_format(digits: str, plus: bool) -> bool:
    """A number a company publishes (landline, free dial, shared cost), not a mobile.

    Japanese 070/080/090 (mobile), 050 (IP phone) and 020 (pager) numbers never are.
    """
    national = digits[2:] if plus and digits.startswith("81") else None
    if national is not None or (not plus and digits[0] == "0"):
        rest = national if national is not None else digits[1:]
        return rest[:2] not in ("70", "80", "90", "50", "20")
    try:
        num = phonenumbers.parse(("+" if plus else "") + digits, None if plus else "US")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(num) in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.SHARED_COST,
        phonenumbers.PhoneNumberType.UAN,
    )


def _denied(src: str, lo: int, hi: int, base: int, end: int) -> bool:
    """Whether the sentence ``[lo, hi)`` says the number ``[base, end)`` is no phone number:
    the denial right before it, or after it with no phone word in between."""
    if _DENIED_BEFORE.search(src, lo, base):
        return True
    after = _DENIED.search(src, end, hi)
    return after is not None and not _STRONG_PHONE.search(src, end, after.start())


def _digitish(text: str, low: str | None, ascii_digits: bool = False) -> bool:
    """Six digits close together, or a kanji, kana or English number word.

    ``low``: `hint_lower` of ``text``; ``ascii_digits``: its only digits are 0-9.
    """
    if text.isascii():
        if _ascii_digits(text) >= 6 and _SIX_ASCII_DIGITS.search(text):
            return True
        return _en_number(text.lower() if low is None else low)  # (never None for ASCII)
    six = _SIX_ASCII_DIGITS_OR_KANJI_PAIR if ascii_digits else _SIX_DIGITS_OR_KANJI_PAIR
    if six.search(text) or _KANA_NUMBER.search(text):
        return True
    if low is None:  # a character folds oddly under IGNORECASE: let the digits view decide
        return True
    return _en_number(low)


def _en_number(lowered: str) -> bool:
    """Whether `_EN_NUMBER` matches ``lowered``: substring tests first (most texts hold no
    number word at all; the regex tries every e, f, n, o, s, t and z of English text)."""
    for number in _EN_NUMBER_WORDS:
        if number in lowered:
            return _EN_NUMBER.search(lowered) is not None
    return False


def _ascii_digits(text: str) -> int:
    """How many ASCII digits a pure-ASCII ``text`` holds."""
    data = text.encode("ascii")
    return len(data) - len(data.translate(None, b"0123456789"))


# A maximal run of letters that are all O's: only those O's can become zeros
# (`normalize.digits`: an O-as-zero run is bounded by non-letters and holds no other letter).
_O_WORD: Final = re.compile(r"[oO](?<![A-Za-z][oO])[oO]*(?![A-Za-z])")


def _too_few_digits(text: str, low: str) -> bool:
    """Whether the digits view of a pure-ASCII ``text`` (its own squeezed view) surely holds
    fewer than `MIN_DIGITS` digits, so `find_phones` finds nothing (``low``: its lower case).

    `normalize.digits` makes a digit of an ASCII digit, of each number word of a rewritten
    English run (each a match of `normalize._EN_HINT`, not preceded or followed by a
    letter), and of an O in an O-as-zero run (a letter run of O's only): their counts bound
    the digits of the view.  Nothing else makes digits in ASCII text.
    """
    bound = _ascii_digits(text)
    if bound >= MIN_DIGITS:
        return False
    bound += len(_EN_HINT.findall(low))
    if bound >= MIN_DIGITS:
        return False
    if "o" in low:
        bound += sum(map(len, _O_WORD.findall(text)))
    return bound < MIN_DIGITS


def _alone_on_lines(src: str, start: int, end: int) -> bool:
    """A number across lines (messages) counts without a phone word only when nothing but
    the digits is on its first and last line: "Chapter 03" + "1234 5678 words total" is
    no phone number, "090" + "1234" + "5678" is."""
    if "\n" not in src[start:end]:
        return True
    line_start = src.rfind("\n", 0, start) + 1
    line_end = src.find("\n", end)
    after = src[end:] if line_end < 0 else src[end:line_end]
    return not src[line_start:start].strip() and not after.strip(" .、。!?！？")


def find_phones(text: ScanText) -> list[Hit]:
    plain = text.base.text
    low = text.base_lower
    if not _digitish(plain, low, text.ascii_digits):
        return []
    # A number word ("one more thing") passes `_digitish`; building the digits view costs
    # more than bounding its digit count (pure ASCII, no spaced-out letters joined).
    if (
        low is not None and text.squeezed is text.base and plain.isascii()
        and _too_few_digits(plain, low)
    ):
        return []
    view = text.digits
    src = view.text
    hits: list[Hit] = []
    if src.isascii():
        if _ascii_digits(src) < MIN_DIGITS:
            return hits
    elif len(_DIGIT.findall(src)) < MIN_DIGITS:
        return hits
    near: bool | None = None
    sentence_facts: dict[tuple[int, int], list[bool | None]] = {}
    for run in _GROUPS.finditer(src):
        base = run.start()
        spans = [g.span() for g in _GROUP.finditer(src, base, run.end())]
        # cum[k]: digits in the first k groups.
        cum = [0]
        for a, b in spans:
            cum.append(cum[-1] + b - a)
        if cum[-1] < MIN_DIGITS:
            continue
        end = run.end()
        if _THOUSANDS.fullmatch(src, base, end):
            continue
        lo, hi = text.sentences(view).bounds(base, end)
        # What depends on the sentence only, once per sentence: a long one holding many
        # numbers would otherwise be searched whole again for each.
        facts = sentence_facts.get((lo, hi))
        if facts is None:
            seg = src[lo:hi].lower()
            facts = sentence_facts[(lo, hi)] = [
                "phone" in seg or "電話番号" in seg,
                _DATA_HINTED.exists(seg, plain_lower=True)
                and not _FIRST_PERSON.search(src, lo, hi),
                None,  # a strong phone word in it (looked for when needed)
            ]
        if facts[0] and _denied(src, max(lo, base - _DENIAL_REACH),
                                min(hi, end + _DENIAL_REACH), base, end):
            continue
        data = facts[1]
        if _NOT_PHONE.search(src, max(lo, base - _LABEL_REACH), base):
            if facts[2] is None:
                facts[2] = _STRONG_PHONE.search(src, lo, hi) is not None
            if not facts[2]:
                continue
        plus = src[base] == "+"
        if near is None:
            kw = text.kw.text
            near = _PHONE_WORDS.exists(kw, plain_lower=text.kw_plain)
        n = len(spans)
        run_digits = "".join([src[a:b] for a, b in spans])  # groups i..j-1: [cum[i]:cum[j]]
        i = 0
        while i < n:
            found = False
            # Longest candidate first: groups i..j-1 holding 10-15 digits. Every group holds
            # a digit, so ``cum`` rises: start at the last j within MAX_DIGITS (a run of
            # thousands of one-digit groups would otherwise cost a pass per group).
            for j in range(bisect_right(cum, cum[i] + MAX_DIGITS, i) - 1, i, -1):
                size = cum[j] - cum[i]
                if size < MIN_DIGITS:
                    break  # fewer groups hold fewer digits
                digits = run_digits[cum[i]:cum[j]]
                shaped = j - i == 3 and [b - a for a, b in spans[i:j]] == [3, 3, 4]
                start = spans[i][0] if i else base
                if (
                    _is_phone(digits, plus and i == 0, shaped, near)
                    and (near or _alone_on_lines(src, start, spans[j - 1][1]))
                    and not (data and (_company_format(digits, plus and i == 0)
                                       or digits.endswith(_DUMMY_ENDINGS)))
                ):
                    hits.append(Hit("contact.phone", view, start, spans[j - 1][1]))
                    i = j
                    found = True
                    break
            if not found:
                i += 1
    return hits
