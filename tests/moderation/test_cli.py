import io

import orjson

from moderation.cli import scan_main


def _run(lines: list[str], argv: list[str] | None = None) -> list[dict[str, object]]:
    out = io.StringIO()
    assert scan_main(argv or [], stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out) == 0
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


def test_text_and_messages() -> None:
    rows = _run([
        '{"id": "a", "text": "My LINE: kota_77"}',
        '{"id": "b", "messages": ["call me", "202", "555", "0119"]}',
        '{"id": "c", "text": "Draft 2 is attached."}',
    ])
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["categories"] == ["contact_exchange"]
    assert rows[1]["categories"] == ["contact_exchange"]
    assert rows[2] == {"id": "c", "categories": [], "findings": []}
    finding = rows[0]["findings"][0]  # type: ignore[index]
    assert set(finding) >= {"category", "rule", "start", "end", "message_index", "severity"}


def test_bad_lines_report_error_and_continue() -> None:
    rows = _run(['not json', '{"id": 7, "text": 5}', '{"id": "ok", "text": "hi"}'])
    assert "error" in rows[0] and rows[1]["id"] == 7 and "error" in rows[1]
    assert rows[2]["categories"] == []


def test_allow_domain_option() -> None:
    line = '{"id": "d", "text": "write to help@example-platform.jp"}'
    assert _run([line])[0]["categories"] == ["contact_exchange"]
    assert _run([line], ["--allow-domain", "example-platform.jp"])[0]["categories"] == []
