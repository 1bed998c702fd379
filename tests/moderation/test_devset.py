import os
from pathlib import Path

import pytest

from moderation.score import load, score_records


def _devset() -> Path | None:
    candidate = Path(__file__).resolve().parents[3] / "shared/moderation/dev.jsonl"
    if candidate.is_file():
        return candidate
    env = os.environ.get("TSUNAGU_MODERATION_DEVSET")
    return Path(env) if env and Path(env).is_file() else None


def test_devset_micro_precision_and_recall() -> None:
    path = _devset()
    if path is None:
        pytest.skip("dev.jsonl not found: set TSUNAGU_MODERATION_DEVSET to its path")
    score = score_records(load(path))
    assert score.micro.precision >= 0.95, score.misclassified
    assert score.micro.recall >= 0.95, score.misclassified
