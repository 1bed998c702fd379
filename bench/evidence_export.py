"""Export and verification time for a thread of 10,000 entries.

    python -m bench.evidence_export [--entries 10000]

Builds the thread (append_batch, 500 per batch), then times: the export (fresh checkpoint,
inclusion proofs, reading every entry, transcript, zip) and the offline verification of the
bundle (``verify_bundle``, what ``tsunagu verify`` runs). Median of three.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

from bench.evidence_common import fresh_store
from chat.evidence import bundle
from chat.evidence.keys import Signer
from chat.evidence.service import EvidenceService
from chat.fanout import LocalFanOut
from chat.models import NewMessage, now_us


async def bench(backend: str, entries: int) -> tuple[float, float, int]:
    import tempfile
    from pathlib import Path

    async with fresh_store(backend, synchronous="NORMAL") as store:
        with tempfile.TemporaryDirectory() as tmp:
            from chat.config import load_settings

            ev = EvidenceService(load_settings(env={}, data_dir=tmp), store, LocalFanOut(),
                                 Signer.load_or_create(Path(tmp) / "k.pem"))
            await ev.start()
            await store.create_thread(id="t_big", kind="contract", title="bench",
                                      stage="in_progress", ref={},
                                      participants=[("a", "client"), ("b", "worker")],
                                      at=now_us())
            body = "検収しました。ありがとうございます。Accepted, thank you. " * 2
            for i in range(0, entries - 1, 500):
                await store.append_batch([
                    NewMessage(thread="t_big", sender="ab"[j % 2], kind="user", body=body)
                    for j in range(min(500, entries - 1 - i))])
            exp, ver = [], []
            size = 0
            for _ in range(3):
                t0 = time.perf_counter()
                data = bundle.to_zip(await ev.bundle_files("t_big", dispute=None,
                                                           exported_by="bench"))
                t1 = time.perf_counter()
                zpath = Path(tmp) / "b.zip"
                zpath.write_bytes(data)
                rep = bundle.verify_bundle(bundle.read(zpath), ev.signer.public)
                t2 = time.perf_counter()
                assert rep.ok and rep.entries == entries, rep.problems
                exp.append(t1 - t0)
                ver.append(t2 - t1)
                size = len(data)
            return statistics.median(exp), statistics.median(ver), size


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10000)
    args = ap.parse_args()
    print(f"# {platform.node()} {platform.machine()}, python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| back end | entries | export (s) | verify (s) | bundle size |")
    print("|---|---|---|---|---|")
    for backend in ("sqlite", "postgres"):
        e, v, size = await bench(backend, args.entries)
        print(f"| {backend} | {args.entries:,} | {e:.2f} | {v:.2f} | {size / 1e6:.1f} MB |",
              flush=True)


if __name__ == "__main__":
    asyncio.run(main())
