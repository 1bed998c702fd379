"""The scanner on hostile texts: the slowest of many 10,000-character messages built to
give it the most work (one command, CPU time, one core):

    python bench/scan_hostile.py [--dev /work/shared/moderation/dev.jsonl] [--top 10]

Each text is a short unit repeated to the body limit (10,000 characters) with no sentence
end, so every match shares one sentence: units are the dev set's and the moderation
tests' strings of up to 80 characters (sentence ends replaced by spaces), and evasion
fragments (spelled "at"/"dot", number words, spaced and full-width letters, zero-width
characters, digit groups, quotes, app names, fee words) alone and combined at random
(seeded). Also each unit's first 2,000 characters with five such messages of history. A
scan's cost must grow with the text, not with its matches times its sentence; this shows
the worst case that is left. Not a test: figures go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import pathlib
import random
import statistics
import time

from moderation.scanner import Scanner

LIMIT = 10_000
FRAGMENTS = [
    "a@b.co ", "x@y ", "@kota_77 ", "tanaka at gmail dot com ", "ｔａｎａｋａ アット ", "ぜろきゅうぜろ ",
    "ぜろ", "one two three four five six seven eight nine ten ", "one ", "zero", "t a n a k a ",
    "t.a.n.a.k.a ", "t-a-n-a-k-a", "0\u200b9\u200b0", "\u200b", "０９０", "①②③④⑤⑥", "〇八〇の",
    "一二三四五六七八九〇", "九", "http://", "https://a.b/ ", "www.", "a.", ". ", "dot ", "at ", "@",
    "＠", "ＬＩＮＥ", "L I N E ", "l1ne ", "wh@tsapp ", "直接", "直接取引 ", "手数料 ", "振込",
    "口座番号 ", "住所 ", "マイナンバー ", "deposit ", "pay ", "fee $5 ", "3,000円 ", "¥", "$", "1",
    "1 ", "12 ", "123-", "(0)", "+81 ", "+", "+1", "-", "ー", "の", "、", ",", "\"", "「", "」", "(",
    "（", "é", "\u0301", "a\u0301", "🙂", "ｱ", "ｶﾞ", "I'll send my ID ", "my id is ", "ID: ",
    "ID:", "は", "is ", "as ",
]


def units(dev: pathlib.Path, rng: random.Random) -> list[str]:
    texts = [json.loads(line).get("text", "") for line in dev.read_text("utf-8").splitlines()]
    root = pathlib.Path(__file__).parents[1] / "tests" / "moderation"
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                texts.append(node.value)
    short = sorted({t for t in texts if 3 <= len(t) <= 80})
    for cut in ("。", ".", "\n", "!", "?", "！", "？"):
        short = [t.replace(cut, " ") for t in short]
    combos = [rng.choice(FRAGMENTS) + rng.choice(FRAGMENTS) for _ in range(300)]
    combos += ["".join(rng.choice(FRAGMENTS) for _ in range(4)) for _ in range(300)]
    return sorted(set(short)) + FRAGMENTS + combos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", default="/work/shared/moderation/dev.jsonl")
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    scanner = Scanner()
    scanner.scan("090-1234-5678 tanaka@gmail.com LINE: kota_77 振込 https://x.co 電話番号" * 50)
    timed: list[tuple[float, int, str]] = []
    for unit in units(pathlib.Path(args.dev), random.Random(5)):
        text = (unit * (LIMIT // len(unit) + 1))[:LIMIT]
        t0 = time.process_time()
        found = scanner.scan(text)
        timed.append((time.process_time() - t0, len(found), unit))
        t0 = time.process_time()
        found = scanner.scan(text[:2000], [text[:2000]] * 5)
        timed.append((time.process_time() - t0, len(found), "(with history) " + unit))
    ms = sorted(t for t, _, _ in timed)
    print(f"{len(timed)} scans of hostile texts ({LIMIT:,} characters, or 2,000 with five "
          "messages of history), CPU ms:")
    print(f"p50 {statistics.median(ms) * 1000:.1f}, p99 {ms[int(len(ms) * 0.99)] * 1000:.1f}, "
          f"max {ms[-1] * 1000:.1f}")
    print("| ms | findings | repeated unit |\n|---|---|---|")
    for t, n, unit in sorted(timed, reverse=True)[: args.top]:
        print(f"| {t * 1000:.1f} | {n} | `{unit[:60]!r}` |")


if __name__ == "__main__":
    main()
