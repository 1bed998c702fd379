from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.scanner import Scanner

SCANNER = Scanner()
TEXT = st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.lists(TEXT, max_size=3))
def test_random_text_never_crashes_and_spans_are_valid(text: str, history: list[str]) -> None:
    messages = [*history, text]
    for f in SCANNER.scan(text, history):
        assert 0 <= f.message_index < len(messages)
        assert 0 <= f.start < f.end <= len(messages[f.message_index])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789〇一二三ぜろいちtwo oh-@.★ LINEid:_", max_size=80))
def test_digit_heavy_text_spans_are_valid(text: str) -> None:
    for f in SCANNER.scan(text):
        assert 0 <= f.start < f.end <= len(text)
