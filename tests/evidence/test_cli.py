"""``tsunagu verify`` and ``tsunagu purge --dry-run`` as commands."""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from chat.cli import main as tsunagu
from chat.evidence.cli import purge_main
from chat.evidence.keys import public_pem
from chat.evidence.retention import DAY_US
from chat.evidence.service import EvidenceService
from chat.models import NewMessage, now_us
from chat.store import Store, open_store


async def write_bundle(store: Store, evidence: EvidenceService, tmp_path: Path) -> tuple[Path, Path]:
    await store.create_thread(id="t1", kind="contract", title="t", stage="in_progress", ref={},
                              participants=[("alice", "client"), ("bob", "worker")], at=now_us())
    await store.append_batch([NewMessage(thread="t1", sender="alice", kind="user",
                                         body=f"m{i}") for i in range(4)])
    files = await evidence.bundle_files("t1", dispute=None, exported_by="s1")
    directory = tmp_path / "bundle"
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    pem = tmp_path / "key.pem"
    pem.write_text(public_pem(evidence.signer.public))
    return directory, pem


async def test_verify_command_names_the_problem(
    store: Store, evidence: EvidenceService, tmp_path: Path, capsys: Any
) -> None:
    directory, pem = await write_bundle(store, evidence, tmp_path)
    assert tsunagu(["verify", str(directory), "--public-key", str(pem)]) == 0
    assert "OK: thread t1: 5 entries" in capsys.readouterr().out
    kept = tmp_path / "kept.json"
    kept.write_bytes((directory / "checkpoint.json").read_bytes())
    assert tsunagu(["verify", str(directory), "--public-key", str(pem),
                    "--checkpoint", str(kept)]) == 0
    doc = orjson.loads(kept.read_bytes())
    doc["checkpoint"]["size"] += 1
    kept.write_bytes(orjson.dumps(doc))
    assert tsunagu(["verify", str(directory), "--public-key", str(pem),
                    "--checkpoint", str(kept)]) == 1
    assert "signature: the checkpoint you kept is not validly signed" in capsys.readouterr().out
    lines = (directory / "entries.jsonl").read_bytes().splitlines()
    entry = orjson.loads(lines[2])
    entry["payload"]["body"] = "forged"
    lines[2] = orjson.dumps(entry)
    (directory / "entries.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    zpath = tmp_path / "b.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in directory.iterdir():
            zf.write(p, p.name)
    assert tsunagu(["verify", str(zpath), "--public-key", str(pem)]) == 1
    out = capsys.readouterr().out
    assert "altered at log_seq 3: the content does not match its content hash" in out
    assert "manifest: entries.jsonl differs" in out
    assert tsunagu(["verify", str(tmp_path / "missing.zip")]) == 2


async def test_purge_dry_run_lists_and_keeps(
    store: Store, settings_factory: Any, capsys: Any
) -> None:
    old = now_us() - 4000 * DAY_US
    await store.create_thread(id="t_old", kind="contract", title="t", stage="closed", ref={},
                              participants=[("alice", "client")], at=old)
    await store.append_batch([NewMessage(thread="t_old", sender="alice", kind="user",
                                         body="古い", created_at=old)])
    await store.update_thread("t_old", stage="closed", at=old)
    settings = settings_factory()
    await store.close()
    assert await asyncio.to_thread(purge_main, settings, dry_run=True) == 0
    out = capsys.readouterr().out
    assert "would purge t_old" in out and "would purge 1 thread(s)" in out
    assert "1 message(s) and 0 revision(s) blanked" in out and "  messages: m" in out
    assert await asyncio.to_thread(purge_main, settings, dry_run=False) == 0
    assert "purged t_old" in capsys.readouterr().out
    again = open_store(settings)
    await again.open()
    try:
        assert [m.body for m in await again.history("t_old")] == [""]
    finally:
        await again.close()


def test_evidence_accept_restore_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``tsunagu evidence accept-restore`` needs --staff and --reason; with no saved
    checkpoint there is nothing to accept."""
    from chat import cli
    from chat.config import Settings

    with pytest.raises(SystemExit):
        cli.main(["evidence", "accept-restore", "--staff", "ops1"])
    monkeypatch.setattr(cli, "_settings", lambda args: Settings(data_dir=str(tmp_path)))
    assert cli.main(["evidence", "accept-restore", "--staff", "ops1", "--reason", " "]) == 2
    assert cli.main(["evidence", "accept-restore", "--staff", "ops1", "--reason", "t42"]) == 0
    assert "nothing to accept" in capsys.readouterr().out
