from moderation import normalize as nz


def _base(text: str) -> nz.View:
    return nz.base(nz.identity(text))


def test_identity_view_maps_to_itself() -> None:
    view = _base("plain ascii text")
    assert view.text == "plain ascii text"
    assert view.span(6, 11) == (6, 11)


def test_nfkc_full_width_and_offsets() -> None:
    original = "ｓａｔｏ＠ｅｘａｍｐｌｅ．ｊｐ"
    view = _base(original)
    assert view.text == "sato@example.jp"
    assert view.span(0, len(view.text)) == (0, len(original))


def test_circled_keycap_and_math_digits() -> None:
    assert _base("②⓪②-⑤⑤⑤").text == "202-555"
    assert _base("➀❶⓵⓿").text == "1110"
    assert _base("0️⃣7️⃣7️⃣").text == "077"
    assert _base("𝟐𝟎𝟐").text == "202"
    assert _base("ⓢⓞⓡⓐ").text == "sora"


def test_zero_width_removed_and_span_covers_original() -> None:
    original = "T\u200be\u200bl\u2060egram"
    view = _base(original)
    assert view.text == "Telegram"
    assert view.span(0, 8) == (0, len(original))


def test_dashes_and_homoglyphs() -> None:
    assert _base("090－5555—0141").text == "090-5555-0141"
    assert _base("dіscоrd").text == "discord"  # Cyrillic і and о


def test_half_width_kana_with_dakuten() -> None:
    assert _base("ｶﾞｲﾄﾞ").text == "ガイド"


def test_squeeze_joins_spaced_letters() -> None:
    for spaced, joined in [
        ("t e l e g r a m", "telegram"),
        ("d.i.s.c.o.r.d", "discord"),
        ("P-a-y-P-a-l", "PayPal"),
        ("マ イ ナ ン バ ー の写真", "マイナンバー の写真"),
    ]:
        assert nz.squeeze(_base(spaced)).text == joined


def test_squeeze_leaves_normal_words() -> None:
    text = "I am a writer, e.g. for blogs"
    assert nz.squeeze(_base(text)).text == text


def test_deleet_only_between_letters() -> None:
    assert nz.deleet(_base("d1sc0rd b@nk acc0unt")).text == "discord bank account"
    assert nz.deleet(_base("kota_77 line 42")).text == "kota_77 line 42"


def test_digits_kanji_kana_english() -> None:
    def dg(t: str) -> str:
        return nz.digits(_base(t)).text

    assert "0905555" in dg("零九零・伍伍伍伍").replace("・", "")
    assert "080" in dg("〇八〇の五五五五")
    assert dg("ぜろきゅうぜろ").startswith("090")
    assert "08055550115" in dg("ゼロハチゼロ ゴーゴーゴーゴー ゼロイチイチゴ")
    assert "2025550148" in dg("two oh two, five five five, oh one four eight")
    assert "090-5555" in dg("O9O-5555")


def test_digits_keep_ordinary_text() -> None:
    text = "一度お電話でお話ししたいです"
    assert nz.digits(_base(text)).text == text


def test_spelled_email() -> None:
    def em(t: str) -> str:
        return nz.spelled_email(_base(t), weak_at=True).text

    assert em("mira dot designs at example dot com") == "mira.designs@example.com"
    assert em("k.tanaka [at] example [dot] net") == "k.tanaka@example.net"
    assert em("tanaka.design アットマーク example ドット jp") == "tanaka.design@example.jp"
    assert em("yama★example.jp") == "yama@example.jp"


def test_lower_keeps_length() -> None:
    view = nz.lower(_base("İstanbul LINE"))
    assert len(view.text) == len("İstanbul LINE")
    assert view.text.endswith("line")
