"""Cases from the scanner review (misses, false positives, spans), one table per family."""

import pytest

from moderation.findings import CONTACT, DEAL, EXPENSE, PII
from moderation.policy import mask
from moderation.scanner import Scanner

SCANNER = Scanner()


def cats(text: str, history: tuple[str, ...] = ()) -> set[str]:
    return {f.category for f in SCANNER.scan(text, history) if f.message_index == len(history)}


def rules(text: str, history: tuple[str, ...] = ()) -> set[str]:
    return {f.rule for f in SCANNER.scan(text, history) if f.message_index == len(history)}


# 1. A refusal elsewhere in the sentence does not switch the contact/deal rules off.
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("ここでは詳しくお話しできませんので、LINEで連絡ください", CONTACT),
        ("I can't use this chat well, add me on LINE: kota_77", CONTACT),
        ("ここでは契約できませんので、直接契約しましょう", DEAL),
    ],
)
def test_refusal_scoped_to_the_proposal(text: str, category: str) -> None:
    assert category in cats(text)


# 2. Unrelated words near a number do not hide a phone number.
@pytest.mark.parametrize(
    "text",
    [
        "電話番号は090-1234-5678です（注文番号の件で）",
        "090-1234-5678 Jan",
        "This item is great, text me 090 1234 5678",
    ],
)
def test_phone_not_exempted_by_unrelated_words(text: str) -> None:
    assert "contact.phone" in rules(text)


def test_phone_masked_when_item_is_mentioned() -> None:
    text = "This item is great, text me 090 1234 5678"
    masked = mask(text, SCANNER.scan(text), 0)
    assert "1234" not in masked and "5678" not in masked


@pytest.mark.parametrize(
    "text",
    [
        "注文番号: 09012345678",
        "注文番号：090-1234-5678 の件で確認です",
        "order #09012345678 shipped",
    ],
)
def test_labelled_order_number_is_not_a_phone(text: str) -> None:
    assert "contact.phone" not in rules(text)


# 3. Letters glued to the digits.
@pytest.mark.parametrize(
    "text",
    ["TEL090-1234-5678", "TEL.090-1234-5678", "℡090-1234-5678", "090-1234-5678ok"],
)
def test_phone_glued_to_letters(text: str) -> None:
    assert "contact.phone" in rules(text)


# 4. Normalization.
@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("0\u03329\u03320\u0332-\u03321\u03322\u03323\u03324\u0332-\u03325\u03326\u03327\u03328\u0332",
         "contact.phone"),
        ("L\u0336I\u0336N\u0336E\u0336: kota_77", "contact.messenger_id"),
        ("t\u0336a\u0336n\u0336a\u0336k\u0336a\u0336@gmail.com", "contact.email"),
        ("tanaka@gmail\u3002com", "contact.email"),
        ("tanaka@gmail\uff0ecom", "contact.email"),
        ("ぜろきゅうぜろいちにさんよんごーろくななはちに電話ください", "contact.phone"),
        ("0九0-1234-5678", "contact.phone"),
        ("090\u28001234\u28005678", "contact.phone"),
        ("LlNE: kota_77", "contact.messenger_id"),
        ("L1NE: kota_77", "contact.messenger_id"),
        ("Te1egram: kota_77", "contact.messenger_id"),
        ("ⓛⓘⓝⓔ: kota_77", "contact.messenger_id"),
        ("line: kota_77", "contact.messenger_id"),
    ],
)
def test_normalization_evasions(text: str, rule: str) -> None:
    assert rule in rules(text)


def test_combining_marks_email_masked_whole() -> None:
    text = "t\u0336a\u0336n\u0336a\u0336k\u0336a\u0336@gmail.com"
    masked = mask(text, SCANNER.scan(text), 0)
    assert not any(c.isalpha() for c in masked)


# 5. Other contact evasions.
@pytest.mark.parametrize(
    ("text", "history"),
    [
        ("tanaka@gmail . com", ()),
        (".com", ("tanaka", "@gmail")),
        ("kota_77", ("LINE",)),
        ("IDはkota_77です", ("LINEやってますか？",)),
        ("kota_77 is my LINE", ()),
        ("連絡先を交換しませんか", ()),
        ("プロフィール画像のQRから追加してね", ()),
    ],
)
def test_contact_evasions(text: str, history: tuple[str, ...]) -> None:
    assert CONTACT in cats(text, history)


# 6. Off-platform deals and expense demands.
@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("手数料がかかるので、次回からは直接やり取りしましょう", DEAL),
        ("サイトを通すと手数料が20%取られるので、個人で契約しませんか", DEAL),
        ("個人間でやり取りしましょう", DEAL),
        ("直接ご連絡いただければ、お安くします", DEAL),
        ("We can avoid the 20% fee if you invoice me directly.", DEAL),
        ("Let's cut out the middleman", DEAL),
        ("ビジネスネットワークに参加してください。参加費は3万円です", EXPENSE),
        ("有料会員への登録が必要です", EXPENSE),
        ("商品を代わりに買ってもらえますか？代金は後で払います", EXPENSE),
        ("Amazonで商品を購入して送ってください。代金は後でお支払いします", EXPENSE),
        ("What is your My Number?", PII),
    ],
)
def test_deal_and_expense_misses(text: str, category: str) -> None:
    assert category in cats(text)


# 7./8. Ordinary work talk: no finding at all.
@pytest.mark.parametrize(
    "text",
    [
        "The shop should accept PayPal, Venmo and bank transfer.",
        "ECサイトの決済方法にPayPalと銀行振込を追加してください。",
        "決済手段として銀行振込とクレジットカードに対応してください。",
        "お客様が直接お支払いできる画面を作ってください",
        "ユーザーが直接取引できるマーケットプレイスを開発しています",
        "直接取引は規約で禁止されているので、こちらでお願いします",
        "I don't do direct deals outside the site.",
        "I'll make the deposit before Friday so you can start.",
        "Do you need a deposit first?",
        "Please build the sales page for our online course, priced at $79.",
        "The membership fee is 1000 yen; please show it on the page you build.",
        "研修の案内ページを作ってください。受講料は3万円です。",
        "The software license fee is included in your quote.",
        "売上は3,125,550,123円でした。",
        "Total number of records: 2,125,550,123",
        "Please enter the company's phone 03-1234-5678 from the website into the sheet.",
        "Phone field test data: 03-1234-5678",
    ],
)
def test_work_talk_is_clean(text: str) -> None:
    assert SCANNER.scan(text) == []


def test_digits_not_joined_across_unrelated_messages() -> None:
    assert SCANNER.scan("1234 5678 words total", ("Chapter 03",)) == []


# Spans.
def test_span_starts_at_combining_letter() -> None:
    found = [f for f in SCANNER.scan("t\u0301anaka@gmail.com") if f.rule == "contact.email"]
    assert found and found[0].start == 0


def test_discord_discriminator_in_span() -> None:
    text = "Discord: pixel.fox#1234"
    found = [f for f in SCANNER.scan(text) if f.rule == "contact.messenger_id"]
    assert found and found[0].end == len(text)


def test_pointer_words_are_not_ids() -> None:
    text = "Add me on Telegram, my handle is the same as my username here"
    ids = [text[f.start:f.end] for f in SCANNER.scan(text) if f.rule == "contact.messenger_id"]
    assert "the" not in ids
    assert CONTACT in cats(text)


def test_particle_after_kana_phone_not_masked() -> None:
    text = "ぜろきゅうぜろいちにさんよんごーろくななはち に電話ください"
    found = [f for f in SCANNER.scan(text) if f.rule == "contact.phone"]
    assert found
    assert all(text[f.start:f.end].rstrip().endswith("はち") for f in found)


@pytest.mark.parametrize(
    "text",
    [
        "Check line: 42 in main.py",
        "I can't share my email, phone or LINE here, sorry.",
        "LINEは使っていないので、こちらでお願いします",
        "今後は直接ご依頼いただいても大丈夫です（このサイトで）",
        "手数料についてはサポートに直接ご連絡ください",
        "If the fee looks wrong, contact support directly.",
        "ご連絡ありがとうございます。次回からは直接こちらのメッセージでやり取りしましょう",
        "The item costs 1,234,567 yen",
        "Order 0901234567 shipped; tracking 1234567890123",
        "Please buy a domain for the site; we will reimburse you later.",
    ],
)
def test_more_work_talk_is_clean(text: str) -> None:
    assert SCANNER.scan(text) == []


# Second review of today's rules: each regression, caught (True) or left alone (False).
@pytest.mark.parametrize(
    ("text", "caught"),
    [
        # 1. The data-entry exemption: only a clear task, a company-format number, no phone
        # word or contact verb pointing at it.
        ("電話番号一覧: 090-1234-5678", True),
        ("For the record, 090-1234-5678", True),
        ("連絡先リスト 090-1234-5678 に登録して", True),
        ("Please enter the company's phone 03-1234-5678 from the website into the sheet.", False),
        # 2. A negated consequence or a concession is no refusal.
        ("直接契約すれば手数料は発生しません", True),
        ("直接振込なら源泉徴収も発生しませんよ", True),
        ("外部連絡は禁止でもLINEならOKです。ID: kota_77", True),
        ("LINE使ってないならWhatsAppは？", True),
        ("直接契約はしません", False),
        ("LINEは使っていないので、こちらでお願いします", False),
        # 3. A refusal after the proposal as its topic; から as a particle.
        ("直接契約は、規約上できません", False),
        ("サイト外でのやり取りは、規約で禁止されていますのでご遠慮ください", False),
        ("LINEからのご連絡はお受けできません", False),
        ("LINE IDは、お伝えできかねます", False),
        ("ここでは契約できませんので、直接契約しましょう", True),
        # 4. "line:" in code, config and CSS.
        ("Error at line: main_v2.py", False),
        ("line: item_2 in the config", False),
        ("CSS: line: 1.5_em", False),
        ("line: kota_77", True),
        ("add me on line: kota_77", True),
        # 5. Direct contact on this platform.
        ("納期の件、直接やり取りした方が早いので、今後はこのスレッドでお願いします", False),
        ("Please contact me directly if the fee needs adjusting.", False),
        ("We can save the platform fee if you contact me directly", True),
        ("手数料がかかるので、次回からは直接やり取りしましょう", True),
        # 6. Contact exchange declined, or numbers in a spreadsheet.
        ("連絡先の交換は不要です", False),
        ("Do not exchange contact details", False),
        ("The spreadsheet should exchange numbers between columns", False),
        ("連絡先を交換しませんか", True),
        ("Let's exchange contact details", True),
        # 7. A denial taken back does not label the number.
        ("Not a phone number, just kidding: 090-1234-5678 call", True),
        ("Not a phone number: 0312345678", False),
        # 8. A QR code that is the work.
        ("ＱＲの読み取りテストお願いします", False),
        ("QRコードを読み取って追加してください", True),
    ],
)
def test_second_review(text: str, caught: bool) -> None:
    assert bool(SCANNER.scan(text)) is caught, SCANNER.scan(text)
