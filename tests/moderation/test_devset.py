from pathlib import Path

import pytest

from moderation.score import DEVSET_ENV, load, score_records
from tests.moderation.devset import devset_path


def test_devset_micro_precision_and_recall() -> None:
    score = score_records(load(devset_path()))
    assert score.micro.precision >= 0.95, score.misclassified
    assert score.micro.recall >= 0.95, score.misclassified


def test_devset_path_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "dev.jsonl"
    chosen.write_text('{"id": "x", "text": "hi", "labels": ["clean"]}\n', "utf-8")
    monkeypatch.setenv(DEVSET_ENV, str(chosen))
    assert devset_path() == chosen


def test_devset_path_falls_back_when_the_environment_names_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEVSET_ENV, str(tmp_path / "missing.jsonl"))
    found = devset_path()
    assert found.name == "dev.jsonl" and found.is_file()
