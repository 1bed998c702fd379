"""Phone number detector: digit runs on the digits view, checked with ``phonenumbers``.

Runs of digit groups (separated by spaces, dashes, dots, brackets, 、・ or newlines between
messages) are cut into candidates of 10–15 digits.  A candidate counts when:

* it starts with ``+``: a valid or possible international number;
* it starts with ``0``: a valid Japanese number (region JP), or a UK mobile ``07…`` near a
  phone word;
* otherwise: a valid North American number written 3-3-4 or near a phone word.

Candidates in a sentence about order numbers, SKUs or product codes are ignored.
"""

from __future__ import annotations

import re
from typing import Final

import phonenumbers

from moderation.context import Hit, ScanText
from moderation.lexicon import word

_GROUPS: Final = re.compile(
    r"(?<![A-Za-z0-9/#=_.\-])(?P<plus>\+\s?)?\(?\d+(?:[\s\-.()・、,/|ーの]{1,3}\(?\d+\)?)*"
    r"(?![A-Za-z0-9])"
)
_GROUP: Final = re.compile(r"\d+")
_PHONE_WORDS: Final = re.compile(
    word(r"call|phone|tel|text|sms|number|whatsapp|signal|viber|telegram|mobile|cell|reach|"
         r"contact|ring|dial")
    + r"|電話|番号|携帯|ショートメール|連絡|ＳＭＳ|TEL",
    re.IGNORECASE,
)
_NOT_PHONE: Final = re.compile(
    word(r"order|orders|sku|skus|product codes?|item|invoice|tracking|serial|ref|reference|"
         r"zip|postcode|postal|isbn|jan|ean|barcode|worker id|member id|account id|ticket")
    + r"|注文番号|商品コード|品番|型番|伝票|追跡番号|会員番号|郵便番号|請求書番号|管理番号|受付番号",
    re.IGNORECASE,
)
# Fast path: without digits or number words there is no phone number to find.
_DIGITISH: Final = re.compile(
    r"\d(?:\D{0,4}\d){5}|[〇零一壱二弐三参四五伍六七八九]{2}|ぜろ|ゼロ|れい|いち|イチ|きゅう|"
    r"キュウ|キュー|はち|ハチ|なな|ナナ|ろく|ロク|よん|ヨン|ごー|ゴー|"
    + word(r"zero|oh|one|two|three|four|five|six|seven|eight|nine"),
    re.IGNORECASE,
)
MIN_DIGITS: Final = 10
MAX_DIGITS: Final = 15


def _is_phone(digits: str, plus: bool, groups: list[str], near_word: bool) -> bool:
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
        shaped = [len(g) for g in groups] == [3, 3, 4]
        if len(digits) == 10 and (shaped or near_word):
            return bool(phonenumbers.is_valid_number(phonenumbers.parse(digits, "US")))
    except phonenumbers.NumberParseException:
        return False
    return False


def find_phones(text: ScanText) -> list[Hit]:
    if _DIGITISH.search(text.base.text) is None:
        return []
    view = text.digits
    src = view.text
    hits: list[Hit] = []
    near_word = _PHONE_WORDS.search(text.kw.text) is not None
    for run in _GROUPS.finditer(src):
        groups = list(_GROUP.finditer(run.group()))
        total = sum(len(g.group()) for g in groups)
        if total < MIN_DIGITS:
            continue
        lo, hi = text.sentences(view).bounds(run.start(), run.end())
        if _NOT_PHONE.search(src, lo, hi):
            continue
        plus = run.group("plus") is not None
        i = 0
        while i < len(groups):
            found = False
            for j in range(len(groups), i, -1):
                parts = [g.group() for g in groups[i:j]]
                digits = "".join(parts)
                if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
                    continue
                if _is_phone(digits, plus and i == 0, parts, near_word):
                    start = run.start() + (groups[i].start() if i else 0)
                    hits.append(Hit("contact.phone", view, start, run.start() + groups[j - 1].end()))
                    i = j
                    found = True
                    break
            if not found:
                i += 1
    return hits
