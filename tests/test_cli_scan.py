"""`tsunagu scan`: JSON lines in, one JSON line out per input, categories over sequences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tsunagu_scan_reads_json_lines_and_answers_each() -> None:
    lines = [
        {"id": "plain", "text": "LINE教えてください"},
        {"id": "split", "messages": ["電話は090", "5555", "1234です"]},
        {"id": "clean", "text": "ガイドラインに沿ってデッドラインまでに納品します"},
    ]
    stdin = "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\nnot json\n"
    proc = subprocess.run([sys.executable, "-m", "chat.cli", "scan"], input=stdin, text=True,
                          capture_output=True, cwd=ROOT, timeout=60, check=True)
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o.get("id") for o in out] == ["plain", "split", "clean", None]
    assert out[0]["categories"] == ["contact_exchange"]
    assert out[1]["categories"] == ["contact_exchange"], "digits split over three messages"
    assert out[2]["categories"] == [] and out[2]["findings"] == []
    assert "error" in out[3]
    finding = out[0]["findings"][0]
    assert set(finding) >= {"category", "rule", "start", "end", "severity", "explanation"}
    assert finding["explanation"]["ja"] and finding["explanation"]["en"]
