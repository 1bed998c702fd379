import pytest

from moderation.findings import CONTACT, DEAL, EXPENSE, PII, Finding, make_finding
from moderation.policy import mask
from moderation.scanner import HISTORY_BUDGET_CHARS, HISTORY_TAIL_CHARS, Scanner, look_back

SCANNER = Scanner(allow_domains=["example-platform.jp"], allow_phrases=["LINE Pay"])


def cats(text: str, history: tuple[str, ...] = ()) -> set[str]:
    return {f.category for f in SCANNER.scan(text, history)}


def rules(text: str) -> set[str]:
    return {f.rule for f in SCANNER.scan(text)}


@pytest.mark.parametrize(
    "text",
    [
        "ｔａｎａｋａ at gmail dot com",
        "reach me: sato (at) mailbox (dot) co.jp",
        "メールは suzuki.w アットマーク mailbox ドット jp まで",
        "moc.liamg@ikuzus — backwards",
        "write to jiro\u200b.k@mailbox.net",
        # Letters spaced out: the address is whole only once they are joined.
        "t a n a k a @ g m a i l . c o m",
        "メールは t a n a k a ＠ g m a i l . c o m です",
        "email me: t a n a k a at g m a i l dot c o m",
        "s-a-t-o @ mailbox.net",
    ],
)
def test_email_variants(text: str) -> None:
    assert "contact.email" in rules(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # The provider named, the rest of its domain left off: everyone knows it.
        ("my email is tanaka at gmail", "tanaka at gmail"),
        ("tanaka(at)gmail でお願いします", "tanaka(at)gmail"),
        ("tanakaアットgmail", "tanakaアットgmail"),
        ("送り先: tanaka@gmail", "tanaka@gmail"),
        ("send it to tanaka at gmail com", "tanaka at gmail com"),
        ("tanaka at gmail please", "tanaka at gmail"),
        ("kota_77 at outlook", "kota_77 at outlook"),
        # No "@" at all: an account name before a provider's own domain.
        ("メアドは tanaka gmail.com です", "tanaka gmail.com"),
        ("tanaka.k gmail.com", "tanaka.k gmail.com"),
    ],
)
def test_an_address_at_a_mail_provider_without_the_rest_of_it(text: str, address: str) -> None:
    spans = {text[f.start:f.end] for f in SCANNER.scan(text) if f.rule == "contact.email"}
    assert spans == {address}


def test_an_address_at_a_mail_provider_split_over_messages() -> None:
    findings = SCANNER.scan("gmail.com です", ("メアドは", "tanaka"))
    assert {(f.message_index, f.rule) for f in findings} == {
        (1, "contact.email"), (2, "contact.email")}


@pytest.mark.parametrize(
    "text",
    [
        "Please look at Gmail settings",
        "I am good at gmail filters",
        "the team at gmail shipped it",
        "my friend at yahoo",
        "meet at live events",
        "I only check email at hotmail",
        "we use yahoo.co.jp mail",
        "use gmail.com for the form",
        "email: send from gmail.com",
        "git push origin main@live",
        "tanaka@live",
        # a bare " at " and a plain word, with no mail word near: work talk
        "The SMTP relay at gmail rejects large attachments",
    ],
)
def test_mail_providers_in_work_talk_are_not_addresses(text: str) -> None:
    assert "contact.email" not in rules(text)


def test_a_spaced_out_address_is_masked_whole_in_the_original() -> None:
    text = "メールは t a n a k a ＠ g m a i l . c o m です"
    spans = {text[f.start:f.end] for f in SCANNER.scan(text) if f.rule == "contact.email"}
    assert spans == {"t a n a k a ＠ g m a i l . c o m"}


def test_a_spaced_out_address_at_an_allowed_domain_is_left_alone() -> None:
    assert "contact.email" not in rules("support: s u p p o r t @ example-platform.jp")


@pytest.mark.parametrize(
    "text",
    [
        "ぜろきゅうぜろ、いちにさんよん、ごろくななはち です",
        "携帯: 〇八〇-壱弐参四-伍六七八",
        "call me on +44 7700 900123",
        "text me at (415) 555-2671",
        "電話は０９０－１２３４－５６７８まで",
        "my cell is zero nine zero one two three four five six seven eight",
        # Dotless ı / long ſ match under IGNORECASE but lower() keeps them (used to crash).
        "call me: zero nıne zero one two three four fıve ſix seven eight",
        "call me 0 nine 0 1 2 3 4 5 6 7 8",
        "my number: O9O-I234-5678",
        "zero nine zero 1234 5678",
        "my number is 090-1234-5678, use it as test data",
    ],
)
def test_phone_variants(text: str) -> None:
    assert "contact.phone" in rules(text)


@pytest.mark.parametrize(
    "text",
    [
        "Let's talk on Telegram, my handle is @taro_dev",
        "LINEで連絡しましょう。IDは hana_1234 です",
        "ﾗｲﾝやってますか？",
        "add me on d1sc0rd: wolf.pack",
        "Kakaoで話しましょう",
        "緑のアプリで話しませんか？",
        "What's your email? I'll send the files directly.",
        "インスタのアカウント名を教えてください",
        "join me here: https://zoom.us/j/1234567890",
        # a message asked for on an app, the app chosen as the channel, words split
        "フェイスブックでメッセージください",
        "メッセージはLINEでお願いします",
        "ご連絡はWhatsAppでお願いします",
        "Send me a message on facebook",
        "Drop me a line on telegram",
        "Whats app me",
        "Let's continue on G mail",
        "電話で話したほうが早いので、番号教えてもらえますか",
        "Text me, it's faster than this chat",
        "Add me on LinkedIn and we'll talk there",
        "Let's hop on a WhatsApp call",
        "メアド交換しましょう",
        "個人のメールに送ってください",
        "Gmailに直接送ってもらえますか",
        "電話してもいいですか？番号はプロフィールに書いてあります",
        "ここだと話しにくいので別のアプリで",
        "ｌｉｎｅ ＩＤ：ｔａｎａｋａ",
        "ラインやってる？",
        "ご依頼の件、私のHPのお問い合わせフォームからご連絡ください",
        "Please contact me through my website instead",
        "hit me up on the app with the green icon",
        "whats ur ig",
        "drop your digits",
        "I prefer communicating by email, mine is on my profile",
        "電話で話しませんか",
        "お電話番号をお伺いしてもよろしいでしょうか",
        "Kindly download Telegram for the interview",
        "The interview will be conducted on Teams, add me: hr.manager22",
        "面接はLINEで行います",
    ],
)
def test_contact_exchange(text: str) -> None:
    assert CONTACT in cats(text)


@pytest.mark.parametrize(
    "text",
    [
        "Please write me a summary of the Slack integration",
        "The Facebook page design: please send me a message when done",
        "返信はこのチャットでお願いします",
        "インスタで見かけたような雰囲気のデザインでお願いします。",
        "We need the email field to accept addresses like a@b.co in the form.",
    ],
)
def test_work_talk_near_those_cues_is_not_reported(text: str) -> None:
    assert SCANNER.scan(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Let's do the next project outside the platform and save the fees.",
        "次からは直接契約でお願いします。",
        "I'll pay you via PayPal instead.",
        "手数料がもったいないので銀行振込にしましょう。",
        "We can settle the rest off the books.",
        "サイトを通さずに続けませんか",
        # the marketplace by its name
        "Pay outside Upwork and I'll give you a bonus",
        "ランサーズを通さずに直接やりましょう",
        "CrowdWorksの外で取引しませんか",
        # cash
        "手渡しでお支払いしましょうか",
        "現金書留で報酬を送ります",
        "I can pay you in cash when we meet",
        # direct work offered for later, direct orders advertised
        "Once the contract ends we can keep working together directly",
        "直接のご依頼も承っております",
        "Upwork takes 20%, let's avoid that",
        "If you refund the order I'll pay you the full amount another way",
        "Let's keep it between us, no need to involve the site",
        "Can we do a side deal for the extra pages?",
        "プラットフォームの手数料が高いので、次は直接お願いしたいです",
        "このサイト経由だと高いので別の方法で払います",
        "契約をキャンセルして、個別にお支払いします",
        "ココナラ以外でも依頼できますよ",
        "個人的にやり取りしたいです",
        "let's take this conversation to somewhere more private",
        "評価のために低い金額で契約して、残りは別で払います",
        "Let's finish this job on Fiverr and do the next ones directly",
        "I'll tip you extra via Cash App if you give 5 stars",
        "5つ星の評価をくれたら追加で現金を払います",
    ],
)
def test_off_platform_deal(text: str) -> None:
    assert DEAL in cats(text)


@pytest.mark.parametrize(
    "text",
    [
        "Please send me a scan of your passport.",
        "口座番号を教えてください。",
        "What's your date of birth?",
        "ログイン用のパスワードを教えて",
        "Paste the verification code you just got here.",
        "マイナンバーを送ってください",
        "Send your credit card number so I can register you.",
        # a pretext naming a feature is still a request
        "本人確認機能を使うので免許証の写真を送ってください",
        "Send me your passport photo, it is for a verification feature",
        # nothing the work needs
        "勤務先と年収を教えてください",
        "What's your mother's maiden name?",
        "顔写真を送ってください",
        "Please send a photo of your face for our records",
        "What's the verification code you just received?",
        "届いた認証コードを教えてください",
        "Send me your Upwork login so I can check your profile",
        "Send me your SSN please",
    ],
)
def test_personal_data_request(text: str) -> None:
    assert PII in cats(text)


@pytest.mark.parametrize(
    "text",
    [
        "The passport photo upload feature is done.",
        "パスポート画像のアップロード機能を実装しました",
        "The Upwork API integration is done",
        "商品の手渡しの場面をイラストにします",
        "ペイパル決済の報酬計算を修正しました",
        "The cash register UI is done",
        "The referral feature: users invite 3 friends to unlock a free month",
        "紹介した人数に応じてポイントが貯まる機能を実装します",
        "If a customer buys the wrong size we refund it later through Stripe",
        "修正する顔写真を送ってください",
        "Please upload the face photo crops to the shared folder",
        "The selfie upload step of the KYC flow is done",
        "年収別の料金シミュレーターを作成しました",
        "電話番号の入力欄で、番号を教えてもらう形式にします",
        "We will keep working together directly through the platform",
        "The app should let users add each other by QR code.",
        "The registration fee field must accept decimals.",
        "We can pay you another way if the card fails: through the platform wallet",
        "The API charges 3% per transaction, we should avoid that in the design",
        "The LinkedIn banner is 1584x396",
        "The WhatsApp API call returns 400",
        "プラットフォームの手数料は20%です",
        "別の方法で実装しました",
        "別のアプリで実装しました",
        "LINE APIから直接送信する仕組みです",
        "電話番号の交換機能を実装します",
        "私の電話で動作確認しました",
        "ページ番号は画像の下に記載しました",
        "電話番号はPDFの2ページ目に記載されています（会社案内の制作）",
        "ココナラ以外での販売実績もあります",
    ],
)
def test_work_on_these_things_is_not_reported(text: str) -> None:
    assert SCANNER.scan(text) == []


def test_phone_request_gets_both_labels() -> None:
    found = cats("Can I have your phone number?")
    assert found == {CONTACT, PII}
    assert cats("電話番号を教えていただけますか") == {CONTACT, PII}


@pytest.mark.parametrize(
    "text",
    [
        "Before your first task, please pay the $50 registration fee.",
        "研修の受講料3万円をご負担ください。",
        "Buy the items with your own card and we'll reimburse you later.",
        "広告費を一旦立て替えてください。",
        "スターターキット（9,800円）をご購入いただいた方からお仕事をお渡しします",
        # the promise to pay back in a sentence of its own
        "Amazonでこの商品を購入してレビューを書いてください。代金は後日お支払いします",
        "Please buy these items. I will reimburse you later.",
        "You must first complete our paid training ($150) to get the job",
        "Invite 3 friends to unlock higher paying tasks",
        "紹介した人数に応じて報酬がアップします。まずは会員登録（有料）を",
        "Buy the equipment kit from our store before you begin, we'll refund it later",
        "作業に必要なソフトは各自ご購入ください（約2万円）",
        "手数料を先に振り込んでください",
        "You need to pay a small processing fee first",
        "紹介者を3人集めると報酬が倍になります",
        "作業を始める前に有料プラン（月額980円）に登録してください。バナー制作はその後です。",
        "Can you receive a payment on my behalf and forward it?",
        "ご自身の口座で受け取った報酬を別の口座に送金してください",
    ],
)
def test_expense_demand(text: str) -> None:
    assert EXPENSE in cats(text)


@pytest.mark.parametrize(
    "text",
    [
        "The bug is on line 42 of main.py.",
        "ガイドラインとデッドラインを確認しました。オンラインで作業します。",
        "Please add a postcode field to the address form.",
        "Copy each company's main phone number from their official website.",
        "The total is ¥48,600 and delivery is 2024-05-01.",
        "Order number 0801-2234-5678 needs new images.",
        "Message me here on the platform if anything is unclear.",
        "I'll pay through escrow as soon as the milestone is set.",
        "Sorry, I can't work outside the platform.",
        "申し訳ありませんが、直接契約はできません。",
        "Use example@example.com as a placeholder.",
        "Test with the Stripe card 4242 4242 4242 4242.",
        "LINEスタンプ40個の制作をお願いします。",
        "I'm building a Discord bot with slash commands.",
        "Do you have Photoshop?",
        "Of course, I'll send the revised draft tomorrow.",
        "The invoice lists the office phone of our company.",
        "Contact us at info@example-platform.jp for support.",
        "LINE Pay のロゴをバナーに入れてください",
        "ラインやってる途中です",
        "個人的に気に入っています",
        "個人的に連絡するのは控えます",
        "手数料は先に差し引かれます",
        "手数料を先にお支払いします",
        "サイトのお問い合わせフォームを作ってください",
        "お問い合わせフォームから連絡が来たら通知されるようにしてください",
        "Please add a contact form to our website",
        "電話で話した内容をまとめます",
        "the ig feed layout needs work",
        "the verification code field should accept 6 digits",
        "what's the verification code length in the spec?",
        "残りは別のページに載せます",
        "友達を3人招待する機能を実装してください",
        "We should take the discussion to the kickoff meeting",
        "The design feels more private with the dark theme",
        "Where can I find somewhere private to host the files?",
        "届いた確認コードを入力する画面を作ります",
        "個人的に連絡をいただくのは困ります",
        "Version one, 2, 3 and four are done",
        "Use l10n and i18n libraries",
        "I have one 15 minute call at 3",
        "The file list has I 2 3 items",
        "The phone number field should accept 090-1234-5678 format.",
        "電話番号の表示形式は090-1234-5678のようにしてください。",
        "Test data: 090-1234-5678",
        "月額980円のプランの告知バナーを作ってください。",
        "Please design a banner for the new plan ($9.99 a month).",
        "What's the code you got when the build failed?",
        "the app with the green icon is the one we build",
        "The SSN field must be masked in the form",
        "We work on teams of five engineers",
        "Please send me the WordPress login for staging",
        "I'll handle the next tasks directly after your review",
        "I'll send the next ones directly after your review",
        "The user interview notes are in the Slack channel",
        "Add an onboarding screen to the Telegram bot",
        "We run user interviews on Zoom and share notes in Slack",
        "現金払いの選択肢をチェックアウトに追加してください",
        "お客様と電話で打ち合わせしたい場合の予約ページを作ってください",
        "採用面接の日程調整フォームを作ってください",
        "Teamsの通知ボットを作ってください",
        "現金で払う場合の表示を追加してください",
    ],
)
def test_hard_negatives_stay_clean(text: str) -> None:
    assert SCANNER.scan(text) == []


def test_digits_split_over_three_messages() -> None:
    history = ("電話番号送ります", "090", "5555")
    findings = SCANNER.scan("0123", history)
    phone = [f for f in findings if f.rule == "contact.phone"]
    assert {f.message_index for f in phone} == {1, 2, 3}
    current = [f for f in phone if f.message_index == 3]
    assert (current[0].start, current[0].end) == (0, 4)


def test_email_split_over_messages() -> None:
    findings = SCANNER.scan("dot com", ("my email is", "ortega.creative", "at example"))
    assert any(f.rule == "contact.email" and f.message_index == 3 for f in findings)


@pytest.mark.parametrize(("history", "text"), [
    (("LINE",), "ID: tanaka_99"),
    (("Telegram",), "handle: @tanaka_jp"),
])
def test_app_name_then_the_id_in_the_next_message(history: tuple[str, ...], text: str) -> None:
    ids = [f for f in SCANNER.scan(text, history) if f.rule == "contact.messenger_id"]
    assert [(f.message_index, text[f.start:f.end].lstrip("@")) for f in ids] == [
        (1, text.rsplit(" ", 1)[1].lstrip("@"))]


def test_an_id_on_the_next_line_of_work_talk_is_no_handle() -> None:
    assert SCANNER.scan("The LINE login button\nid: btn_login_2 in the DOM") == []


def test_old_findings_not_repeated() -> None:
    assert SCANNER.scan("thanks!", ("my LINE ID is kota_77",)) == []


def test_spans_point_into_original() -> None:
    text = "連絡先：０９０－５５５５－０１４１（SMS可）"
    (phone,) = [f for f in SCANNER.scan(text) if f.rule == "contact.phone"]
    assert text[phone.start:phone.end] == "０９０－５５５５－０１４１"


def test_fast_finding_constructor_builds_an_equal_frozen_finding() -> None:
    args = ("contact_exchange", "contact.email", 3, 9, 1, "high", {"ja": "x", "en": "y"})
    fast, plain = make_finding(*args), Finding(*args)  # type: ignore[arg-type]
    assert fast == plain and repr(fast) == repr(plain)
    with pytest.raises(AttributeError):
        fast.start = 0  # type: ignore[misc]


def test_finding_fields() -> None:
    (f, *_rest) = SCANNER.scan("My email is anna@mailbox.com")
    assert f.category == CONTACT and f.rule == "contact.email"
    assert f.severity == "high" and f.message_index == 0
    assert set(f.explanation) == {"ja", "en"}


def test_history_window_takes_only_the_tail_of_a_long_previous_message() -> None:
    """A split number whose first part ends a long message is caught, with true spans."""
    long_first = "お見積りありがとうございます。" * 5 + "電話は 090"
    history = [long_first, "5555"]
    findings = Scanner().scan("1234 です", history)
    phone = [f for f in findings if f.rule == "contact.phone"]
    assert {f.message_index for f in phone} == {0, 1, 2}
    first = next(f for f in phone if f.message_index == 0)
    assert long_first[first.start:first.end] == "090"
    # Fragments further back than a long message are not joined (it ended the look-back).
    assert Scanner().scan("1234", ["090", long_first.replace("090", "です"), "5555"]) == []


def test_a_number_sent_digit_by_digit_is_caught() -> None:
    digits = "09012345678"
    history = ("電話番号です", *digits[:-1])
    phone = [f for f in SCANNER.scan(digits[-1], history) if f.rule == "contact.phone"]
    assert {f.message_index for f in phone} == set(range(1, len(digits) + 1))


def test_the_look_back_stops_after_its_budget_of_characters() -> None:
    """Short messages are joined until HISTORY_BUDGET_CHARS of them are taken: a scan's
    cost stays bounded however chatty the sender was."""
    short = "x" * (HISTORY_TAIL_CHARS - 1)
    history = ["090", *[short] * 11]
    parts, cuts = look_back(history, 12)
    assert parts == [short] * (HISTORY_BUDGET_CHARS // len(short) + 1)
    assert cuts == [0] * len(parts)
    # Within the budget, every message up to max_history; a longer one ends it, cut.
    assert look_back(["a", "b", "c"], 2) == (["b", "c"], [0, 0])
    long = "y" * (HISTORY_TAIL_CHARS + 10)
    assert look_back(["a", long, "b"], 12) == (["y" * HISTORY_TAIL_CHARS, "b"], [10, 0])


# ---- messenger IDs: the span covers the ID, so masking hides it ---------------------------

@pytest.mark.parametrize(
    ("text", "shared_id"),
    [
        ("LINE: tanaka_123", "tanaka_123"),
        ("LINEのIDは tanaka123 です", "tanaka123"),
        ("ラインのIDは tanaka123 です", "tanaka123"),
        ("LINE IDはtanaka_99です。追加してください", "tanaka_99"),
        ("LINE→tanaka123", "tanaka123"),
        ("my line id is tanaka.99", "tanaka.99"),
        ("my line id: tanaka99", "tanaka99"),
        ("Telegram @tanaka_x", "@tanaka_x"),
        ("Telegram: @tanaka_x", "@tanaka_x"),
        ("Skype: live:tanaka", "live:tanaka"),
        ("WeChat: tnk88", "tnk88"),
        ("add me on LINE tanaka_123", "tanaka_123"),
        ("my telegram is tanaka_x", "tanaka_x"),
        ("ＬＩＮＥ：ｔａｎａｋａ＿１２３", "ｔａｎａｋａ＿１２３"),  # full width: span in the original
    ],
)
def test_messenger_id_span_covers_the_id(text: str, shared_id: str) -> None:
    found = SCANNER.scan(text)
    assert "contact.messenger" in {f.rule for f in found}
    ids = [text[f.start:f.end] for f in found if f.rule == "contact.messenger_id"]
    assert ids == [shared_id]
    assert shared_id not in mask(text, found, 0)


def test_masking_a_messenger_share_hides_name_and_id() -> None:
    text = "LINE: tanaka_123 で追加してください"
    assert mask(text, SCANNER.scan(text), 0) == "●●●●: ●●●●●●●●●● で追加してください"


@pytest.mark.parametrize(
    "text",
    [
        "LINE 42 of the code",
        "オンラインで作業します",
        "ガイドラインを確認しました",
        "line up the columns",
        "Please map my line id column to the CSV",
        "The bug is on line 42: fix the off-by-one",
    ],
)
def test_no_messenger_id_without_a_messenger(text: str) -> None:
    assert [f.rule for f in SCANNER.scan(text) if f.rule.startswith("contact.messenger")] == []


@pytest.mark.parametrize(
    "text",
    [
        "Let's talk on LINE tomorrow",  # a word after the name is no ID
        "Add me on LINE 42 minutes from now",  # nor a number alone
        # A ":" glued to a word later on is no ID marker.
        "Let's continue on Telegram. Quick question about the brief: should it be red?",
    ],
)
def test_messenger_without_an_id_masks_only_the_name(text: str) -> None:
    found = SCANNER.scan(text)
    assert "contact.messenger" in {f.rule for f in found}
    assert "contact.messenger_id" not in {f.rule for f in found}
