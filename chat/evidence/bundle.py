"""Evidence bundles: what an export contains, and offline verification.

A bundle is a zip (or a directory, or a .tar.gz of one) holding:

==================  ==============================================================
manifest.json       format, thread, dispute, exporter, head, checkpoint, file digests;
                    signed (Ed25519 over its RFC 8785 form without ``signature``)
entries.jsonl       every log entry of the thread, log_seq order (payload null: purged)
chain.json          the chain: ``[log_seq, prev, hash]`` per entry
checkpoint.json     the signed checkpoint ``{"checkpoint": {...}, "signature": b64}``
proof.json          RFC 9162 inclusion proofs of each committed head of the thread
consistency.json    RFC 9162 consistency proofs from each checkpoint handed to the parties
keys.json           the service's public keys (PEM), current and retired
transcript.html     a readable transcript, Japanese and English labels: a rendering of
                    entries.jsonl, covered by the signed manifest's digest (the
                    verifier does not re-render it: labels may change between versions)
==================  ==============================================================

The manifest's fields are checked against the content: entry count, head (the last entry,
whose inclusion in the checkpoint must be proved), checkpoint, dispute (its
``dispute_opened`` entry).

Format ``/1`` (bundles exported before 2026-12-07) is verified with the /1 rules: its
manifest is not signed (a note says so), so only the file digests, the chain, the signed
checkpoint and the inclusion proofs bind its content.

:func:`verify_bundle` needs nothing else but the published public key; it does no I/O.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import merkle
from .chain import GENESIS, LogEntry, Problem, time_warnings, verify_chain
from .keys import Signer, key_id, load_public_key, verify_signature
from .tree import RETIRED_GRACE_US, leaf_data

FORMAT = "tsunagu-evidence-bundle/2"
FORMAT_1 = "tsunagu-evidence-bundle/1"
NOTE_FORMAT_1 = ("format /1 (before 2026-12-07): manifest.json is not signed; the entries "
                 "are bound by the chain, the signed checkpoint and the inclusion proofs, "
                 "the exporter, export time and transcript only by the unsigned manifest")
FILES = ("entries.jsonl", "chain.json", "checkpoint.json", "proof.json", "consistency.json",
         "keys.json", "transcript.html")


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def build(*, thread: str, dispute: str | None, entries: list[LogEntry],
          checkpoint: dict[str, Any], proofs: list[dict[str, Any]], keys: list[dict[str, Any]],
          transcript: str, exported_by: str, exported_at: int, signer: Signer,
          consistency: list[dict[str, Any]] | None = None) -> dict[str, bytes]:
    files = {
        "entries.jsonl": b"".join(orjson.dumps(e.to_json()) + b"\n" for e in entries),
        "chain.json": _json({"genesis": GENESIS,
                             "links": [[e.seq, e.prev, e.hash] for e in entries]}),
        "checkpoint.json": _json(checkpoint),
        "proof.json": _json({"tree_size": checkpoint["checkpoint"]["size"], "leaves": proofs}),
        "consistency.json": _json({"from": consistency or []}),
        "keys.json": _json({"keys": keys}),
        "transcript.html": transcript.encode(),
    }
    head = {"seq": entries[-1].seq, "hash": entries[-1].hash} if entries else None
    manifest = {
        "format": FORMAT, "thread": thread, "dispute": dispute, "exported_by": exported_by,
        "exported_at": exported_at, "entries": len(entries), "head": head,
        "checkpoint": {"size": checkpoint["checkpoint"]["size"],
                       "root": checkpoint["checkpoint"]["root"]},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "key_id": signer.key_id,
    }
    files["manifest.json"] = _json({**manifest, "signature": signer.sign(manifest)})
    return files


def to_zip(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("manifest.json", *FILES):
            if name in files:
                zf.writestr(name, files[name])
    return buf.getvalue()


def read(path: Path) -> dict[str, bytes]:
    """Read a bundle from a zip, a directory or a .tar.gz; OSError/ValueError if unreadable."""
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return {Path(n).name: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as tf:
            out = {}
            for m in tf.getmembers():
                fh = tf.extractfile(m) if m.isfile() else None
                if fh is not None:
                    out[Path(m.name).name] = fh.read()
            return out
    raise ValueError(f"{path} is not a zip, a tar archive or a directory")


@dataclass
class Report:
    thread: str | None = None
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "thread": self.thread, "entries": self.entries,
                "problems": [p.to_json() for p in self.problems], "notes": self.notes}


def verify_bundle(files: Mapping[str, bytes], public_key: Ed25519PublicKey | None = None,
                  kept: Mapping[str, Any] | None = None) -> Report:
    """Check a bundle offline. ``public_key``: the published key (else the bundle's own).

    ``kept``: a checkpoint a party received earlier (``{"checkpoint", "signature"}``); the
    bundle must prove that its history extends that one.
    """
    rep = Report()
    bad = rep.problems.append
    try:
        manifest = orjson.loads(files["manifest.json"])
        cp_doc = orjson.loads(files["checkpoint.json"])
        proof = orjson.loads(files["proof.json"])
        keys = orjson.loads(files["keys.json"])["keys"]
        chain_doc = orjson.loads(files["chain.json"])
        thread = manifest["thread"]
        body, signature = cp_doc["checkpoint"], cp_doc["signature"]
    except KeyError as exc:
        bad(Problem("format", f"missing file or field {exc}"))
        return rep
    except (orjson.JSONDecodeError, TypeError) as exc:
        bad(Problem("format", f"unreadable bundle: {exc}"))
        return rep
    rep.thread = thread
    v1 = manifest.get("format") == FORMAT_1
    if v1:
        rep.notes.append(NOTE_FORMAT_1)
    elif manifest.get("format") != FORMAT:
        bad(Problem("format", f"unknown format {manifest.get('format')!r}"))
    for name, digest in manifest.get("files", {}).items():
        data = files.get(name)
        if data is None:
            bad(Problem("manifest", f"{name} is missing"))
        elif hashlib.sha256(data).hexdigest() != digest:
            bad(Problem("manifest", f"{name} differs from the digest in manifest.json"))

    entries: list[LogEntry] = []
    for n, line in enumerate(files.get("entries.jsonl", b"").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(LogEntry.from_json(orjson.loads(line)))
        except (orjson.JSONDecodeError, ValueError) as exc:
            bad(Problem("format", f"entries.jsonl line {n}: {exc}"))
    rep.entries = len(entries)
    rep.problems.extend(verify_chain(entries, thread=thread))
    rep.notes.extend(f"warning: {w}" for w in time_warnings(entries))
    try:
        _check_manifest(rep, manifest, entries, body, proof, keys, public_key, signed=not v1)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        bad(Problem("manifest", f"unreadable manifest fields: {exc!r}"))

    links = {int(s): (p, h) for s, p, h in chain_doc.get("links", [])}
    for e in entries:
        if links.get(e.seq) != (e.prev, e.hash):
            bad(Problem("chain", "chain.json disagrees with entries.jsonl", e.seq))

    try:
        _check_checkpoint(rep, thread, entries, body, signature, keys, proof, public_key)
        _check_consistency(rep, files, body, keys, public_key, kept)
    except (KeyError, TypeError, ValueError, AttributeError, orjson.JSONDecodeError) as exc:
        bad(Problem("format", f"unreadable checkpoint, keys or proofs: {exc!r}"))
    return rep


def _check_manifest(rep: Report, manifest: Any, entries: list[LogEntry], body: Any,
                    proof: Any, keys: Any, given: Ed25519PublicKey | None, *,
                    signed: bool = True) -> None:
    """The manifest's signature (``signed``: not format /1), and its fields against the
    bundle's content."""
    bad = rep.problems.append
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    kid = manifest.get("key_id")
    if not signed:
        pass
    elif not isinstance(manifest.get("signature"), str) or kid is None:
        bad(Problem("signature", "manifest.json is not signed"))
    else:
        key, why = _resolve_key(kid, keys, given, manifest.get("exported_at"))
        if key is None:
            bad(Problem("key", f"manifest.json is signed by key {kid}: {why}"))
        elif given is not None and key is not given and key_id(given) != kid:
            bad(Problem("key", f"manifest.json is signed by key {kid}, "
                               f"not by the given key {key_id(given)}"))
        elif not verify_signature(key, unsigned, manifest["signature"]):
            bad(Problem("signature", "manifest.json's signature is not valid"))
    if manifest.get("entries") != len(entries):
        bad(Problem("manifest", f"manifest.json lists {manifest.get('entries')} entries, "
                                f"entries.jsonl has {len(entries)}"))
    last = max(entries, key=lambda e: e.seq) if entries else None
    head = {"seq": last.seq, "hash": last.hash} if last else None
    if manifest.get("head") != head:
        bad(Problem("manifest", "manifest.json's head is not the last entry of entries.jsonl",
                    last.seq if last else None))
    if last is not None and not any(
            int(lf["seq"]) >= last.seq for lf in proof.get("leaves", [])):
        # (a proved head at that log_seq but of another hash is a ``head`` problem; one
        # beyond it, a ``removed`` one)
        bad(Problem("inclusion", "the bundle does not prove that its last entry's head is "
                                 "in the checkpoint", last.seq))
    cp = manifest.get("checkpoint") or {}
    if cp.get("size") != body.get("size") or cp.get("root") != body.get("root"):
        bad(Problem("manifest", "manifest.json names another checkpoint than checkpoint.json"))
    dispute = manifest.get("dispute")
    if dispute is not None and not any(
            e.kind == "dispute_opened" and (e.payload or {}).get("dispute") == dispute
            for e in entries):
        bad(Problem("manifest", f"no entry opens the dispute {dispute!r} of manifest.json"))
    if "transcript.html" not in (manifest.get("files") or {}):
        bad(Problem("manifest", "manifest.json does not list transcript.html's digest"))


def _resolve_key(kid: Any, keys: Any, given: Ed25519PublicKey | None, at: Any
                 ) -> tuple[Ed25519PublicKey | None, str]:
    """The public key ``kid``: the given one if its id is ``kid``, else the one listed in
    keys.json whose *derived* id is ``kid``. None (and why) if there is none, or if ``at``
    (a signing time) is after the key's retirement in keys.json."""
    listed = [k for k in keys if isinstance(k, dict) and k.get("key_id") == kid]
    retired = next((k.get("retired_at") for k in listed
                    if isinstance(k.get("retired_at"), int)), None)
    key: Ed25519PublicKey | None = None
    if given is not None and key_id(given) == kid:
        key = given
    else:
        for k in listed:
            try:
                cand = load_public_key(str(k.get("public_key_pem", "")).encode())
            except ValueError:
                continue
            if key_id(cand) == kid:
                key = cand
                break
        if key is None:
            return None, ("not in keys.json" if not listed else
                          "keys.json's key under that id has another id (SHA-256 prefix)")
    if retired is not None and isinstance(at, int) and at > retired + RETIRED_GRACE_US:
        # (within the grace: clock skew between the nodes, see tree.RETIRED_GRACE_US)
        return None, f"signed at {at}, after the key was retired at {retired}"
    return key, ""


def _key_for(kid: Any, keys: Any, given: Ed25519PublicKey | None, at: Any = None
             ) -> Ed25519PublicKey | None:
    return _resolve_key(kid, keys, given, at)[0]


def _check_consistency(rep: Report, files: Mapping[str, bytes], body: Any, keys: Any,
                       given: Ed25519PublicKey | None, kept: Mapping[str, Any] | None) -> None:
    """Earlier checkpoints handed to the parties: signed, and prefixes of this one."""
    bad = rep.problems.append
    doc = orjson.loads(files.get("consistency.json", b'{"from": []}'))
    size, root = int(body["size"]), bytes.fromhex(body["root"])
    proven: list[dict[str, Any]] = []
    for item in doc.get("from", []):
        old, sig = item["checkpoint"], item["signature"]
        key = _key_for(old.get("key_id"), keys, given, old.get("at"))
        if key is None or not verify_signature(key, old, sig):
            bad(Problem("signature", f"the earlier checkpoint of size {old.get('size')} is not "
                                     "validly signed by an unretired key"))
            continue
        if not merkle.verify_consistency(int(old["size"]), size, bytes.fromhex(old["root"]),
                                         root, [bytes.fromhex(p) for p in item["proof"]]):
            bad(Problem("consistency", f"the tree of size {size} does not extend the earlier "
                                       f"checkpoint of size {old['size']} (history rewritten)"))
            continue
        proven.append(old)
    if kept is not None:
        old = kept["checkpoint"]
        key = _key_for(old.get("key_id"), keys, given, old.get("at"))
        if key is None or not verify_signature(key, old, kept["signature"]):
            bad(Problem("signature", "the checkpoint you kept is not validly signed by a "
                                     "known key"))
        elif old != body and old not in proven:
            bad(Problem("consistency", f"the bundle does not prove that its history extends "
                                       f"the checkpoint you kept (size {old.get('size')})"))


def _check_checkpoint(rep: Report, thread: str, entries: list[LogEntry], body: Any,
                      signature: Any, keys: Any, proof: Any,
                      public_key: Ed25519PublicKey | None) -> None:
    bad = rep.problems.append
    # The checkpoint's signature, with the published key.
    kid = body.get("key_id")
    if public_key is None:
        public_key, why = _resolve_key(kid, keys, None, None)
        if public_key is None:
            bad(Problem("key", f"the checkpoint's key {kid}: {why}"))
        else:
            rep.notes.append("signature checked with the bundle's own key: give the published "
                             "key (--public-key) for an independent check")
    _, retired = _resolve_key(kid, keys, public_key, body.get("at"))
    if public_key is not None and retired and key_id(public_key) == kid:
        bad(Problem("key", f"the checkpoint's key {kid}: {retired}"))
    if public_key is not None:
        if key_id(public_key) != kid:
            bad(Problem("key", f"the checkpoint is signed by key {kid}, "
                               f"not by the given key {key_id(public_key)}"))
        elif not verify_signature(public_key, body, signature):
            bad(Problem("signature", "the checkpoint's signature is not valid"))

    # Each committed head: in the tree (inclusion proof), and the same as the entry.
    by_seq = {e.seq: e for e in entries}
    size, root = int(body.get("size", 0)), bytes.fromhex(str(body.get("root", "")))
    leaves = proof.get("leaves", [])
    if not leaves:
        bad(Problem("inclusion", "no committed head of this thread in the checkpoint"))
    for lf in leaves:
        seq, head = int(lf["seq"]), str(lf["head"])
        ok = merkle.verify_inclusion(int(lf["index"]), size,
                                     merkle.leaf_hash(leaf_data(thread, seq, head)),
                                     [bytes.fromhex(p) for p in lf["path"]], root)
        if not ok:
            bad(Problem("inclusion", f"the proof of the head at log_seq {seq} does not lead "
                                     "to the checkpoint's root", seq))
        entry = by_seq.get(seq)
        if entry is None and seq > max(by_seq, default=0):
            bad(Problem("removed", "the entry committed at this log_seq is missing (the last "
                                   "entries were removed)", seq))
        elif entry is None or entry.hash != head:
            bad(Problem("head", "this entry is not the one committed to the checkpoint", seq))
    if leaves and entries:
        last = max(int(lf["seq"]) for lf in leaves)
        beyond = [e.seq for e in entries if e.seq > last]
        if beyond:
            bad(Problem("head", f"{len(beyond)} entries after log_seq {last} are not covered "
                                "by the checkpoint", beyond[0]))
