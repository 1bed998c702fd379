"""Score the scanner on a labelled dev set: ``python -m moderation.score [PATH]``.

Prints per-category and micro precision/recall/F1 over the four categories (``clean``
counts as no category) and the ids of misclassified records.  Without ``PATH`` the dev set
is found with `devset_path`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from moderation.findings import CATEGORIES
from moderation.scanner import Scanner

_REPO = Path(__file__).resolve().parents[1]
DEVSET_ENV = "TSUNAGU_MODERATION_DEVSET"


def devset_path() -> Path:
    """Where the labelled development set is.

    In order: the file named by ``TSUNAGU_MODERATION_DEVSET``; the source of truth
    ``../shared/moderation/dev.jsonl`` beside the repository; the copy vendored in the
    repository (``tests/moderation/dev.jsonl``), so a clone on its own still finds one.
    """
    env = os.environ.get(DEVSET_ENV)
    for candidate in (
        Path(env) if env else None,
        _REPO.parent / "shared" / "moderation" / "dev.jsonl",
        _REPO / "tests" / "moderation" / "dev.jsonl",
    ):
        if candidate is not None and candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"dev.jsonl not found (set {DEVSET_ENV}, or put it in ../shared/moderation/)"
    )


@dataclass(frozen=True, slots=True)
class Counts:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True, slots=True)
class Score:
    per_category: dict[str, Counts]
    micro: Counts
    misclassified: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]


def categories_for(scanner: Scanner, messages: Sequence[str]) -> set[str]:
    """Categories found anywhere in a sequence, scanning each message with its history."""
    found: set[str] = set()
    for i, message in enumerate(messages):
        found.update(f.category for f in scanner.scan(message, messages[:i]))
    return found


def score_records(records: Iterable[dict[str, object]], scanner: Scanner | None = None) -> Score:
    scanner = scanner or Scanner()
    counts = {c: [0, 0, 0] for c in CATEGORIES}
    wrong: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []
    for rec in records:
        raw = rec.get("messages")
        messages = [str(m) for m in raw] if isinstance(raw, list) else [str(rec.get("text", ""))]
        labels = rec.get("labels")
        gold = {str(x) for x in labels if x != "clean"} if isinstance(labels, list) else set()
        got = categories_for(scanner, messages)
        for c in CATEGORIES:
            if c in got and c in gold:
                counts[c][0] += 1
            elif c in got:
                counts[c][1] += 1
            elif c in gold:
                counts[c][2] += 1
        if got != gold:
            wrong.append((str(rec.get("id")), tuple(sorted(gold)), tuple(sorted(got))))
    per: dict[str, Counts] = {c: Counts(*v) for c, v in counts.items()}
    micro = Counts(*(sum(v[k] for v in counts.values()) for k in range(3)))
    return Score(per, micro, tuple(wrong))


def load(path: Path) -> list[dict[str, object]]:
    with path.open("rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def format_score(score: Score) -> str:
    lines = ["| category | P | R | F1 | tp | fp | fn |", "|---|---|---|---|---|---|---|"]
    rows = [*score.per_category.items(), ("micro", score.micro)]
    for name, c in rows:
        lines.append(
            f"| {name} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.tp} | {c.fp} | {c.fn} |"
        )
    lines.append("")
    lines.append(f"misclassified: {len(score.misclassified)}")
    for rid, gold, got in score.misclassified:
        lines.append(f"  {rid}: gold={list(gold)} got={list(got)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else devset_path()
    print(format_score(score_records(load(path))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
