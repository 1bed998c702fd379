"""Bundles without a database: a clean one verifies; random damage never crashes the
verifier and never verifies."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.evidence import bundle, merkle, transcript
from chat.evidence.chain import Pending, extend
from chat.evidence.keys import Signer, checkpoint_body, public_pem
from chat.evidence.tree import RETIRED_GRACE_US, leaf_data

SIGNER = Signer(Ed25519PrivateKey.generate())


def make_bundle(n: int = 5) -> dict[str, bytes]:
    entries, heads = extend({}, [Pending("t1", "message", "alice", {"body": f"本文 {i}"}, i)
                                 for i in range(1, n + 1)])
    other = merkle.leaf_hash(leaf_data("t0", 1, "a" * 64))
    mine = merkle.leaf_hash(leaf_data("t1", n, heads["t1"][1]))
    leaves = [other, mine]
    body = checkpoint_body(size=2, root_hex=merkle.root(leaves).hex(), at=1, kid=SIGNER.key_id)
    proofs = [{"index": 1, "seq": n, "head": heads["t1"][1],
               "path": [p.hex() for p in merkle.inclusion_proof(1, leaves)]}]
    keys = [{"key_id": SIGNER.key_id, "public_key_pem": public_pem(SIGNER.public),
             "created_at": 0, "retired_at": None}]
    html = transcript.render("t1", entries, checkpoint=body, exported_at=2, exported_by="s1")
    return bundle.build(thread="t1", dispute=None, entries=entries,
                        checkpoint={"checkpoint": body, "signature": SIGNER.sign(body)},
                        proofs=proofs, keys=keys, transcript=html,
                        exported_by="s1", exported_at=2, signer=SIGNER)


CLEAN = make_bundle()


def test_clean_bundle_verifies_and_zip_round_trips(tmp_path: Any) -> None:
    assert bundle.verify_bundle(CLEAN, SIGNER.public).ok
    rep = bundle.verify_bundle(CLEAN)
    assert rep.ok and rep.notes  # own key: a note says the check is not independent
    path = tmp_path / "b.zip"
    path.write_bytes(bundle.to_zip(CLEAN))
    assert bundle.verify_bundle(bundle.read(path), SIGNER.public).ok


def test_wrong_key_and_bad_signature() -> None:
    other = Signer(Ed25519PrivateKey.generate())
    assert bundle.verify_bundle(CLEAN, other.public).kinds() == {"key"}
    doc = CLEAN["checkpoint.json"].replace(b'"at": 1', b'"at": 3')
    rep = bundle.verify_bundle({**CLEAN, "checkpoint.json": doc}, SIGNER.public)
    assert "signature" in rep.kinds()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["entries.jsonl", "checkpoint.json", "proof.json", "chain.json"]),
       st.data())
def test_random_damage_never_crashes_and_never_verifies(name: str, data: st.DataObject) -> None:
    raw = bytearray(CLEAN[name])
    i = data.draw(st.integers(0, len(raw) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]))
    raw[i] = new
    rep = bundle.verify_bundle({**CLEAN, name: bytes(raw)}, SIGNER.public)
    assert not rep.ok


def two_head_bundle() -> tuple[dict[str, bytes], list[Any], dict[str, Any]]:
    """Five entries; heads at log_seq 3 and 5 both committed to the signed checkpoint."""
    entries, _ = extend({}, [Pending("t1", "message", "alice", {"body": f"本文 {i}"}, i)
                             for i in range(1, 6)])
    leaves = [merkle.leaf_hash(leaf_data("t1", e.seq, e.hash)) for e in (entries[2], entries[4])]
    body = checkpoint_body(size=2, root_hex=merkle.root(leaves).hex(), at=1, kid=SIGNER.key_id)
    proofs = [{"index": i, "seq": e.seq, "head": e.hash,
               "path": [p.hex() for p in merkle.inclusion_proof(i, leaves)]}
              for i, e in enumerate((entries[2], entries[4]))]
    keys = [{"key_id": SIGNER.key_id, "public_key_pem": public_pem(SIGNER.public),
             "created_at": 0, "retired_at": None}]
    cp = {"checkpoint": body, "signature": SIGNER.sign(body)}
    html = transcript.render("t1", entries, checkpoint=body, exported_at=2, exported_by="s1")
    files = bundle.build(thread="t1", dispute=None, entries=entries, checkpoint=cp,
                         proofs=proofs, keys=keys, transcript=html, exported_by="s1",
                         exported_at=2, signer=SIGNER)
    return files, entries, {"cp": cp, "proofs": proofs, "keys": keys, "body": body}


def redigest(files: dict[str, bytes], **fields: Any) -> dict[str, bytes]:
    """Rewrite the manifest's fields and file digests, keeping its (now stale) signature."""
    import hashlib

    import orjson

    m = orjson.loads(files["manifest.json"])
    m.update(fields)
    m["files"] = {n: hashlib.sha256(files[n]).hexdigest() for n in m["files"]}
    return {**files, "manifest.json": orjson.dumps(m)}


def test_dropping_the_last_entries_is_caught_by_the_signed_manifest() -> None:
    import orjson

    files, entries, parts = two_head_bundle()
    assert bundle.verify_bundle(files, SIGNER.public).ok
    cut = {**files,
           "entries.jsonl": b"".join(orjson.dumps(e.to_json()) + b"\n" for e in entries[:3]),
           "chain.json": orjson.dumps({"genesis": "0" * 64,
                                       "links": [[e.seq, e.prev, e.hash] for e in entries[:3]]}),
           "proof.json": orjson.dumps({"tree_size": 2, "leaves": parts["proofs"][:1]}),
           "transcript.html": transcript.render("t1", entries[:3], checkpoint=parts["body"],
                                                exported_at=2, exported_by="s1").encode()}
    # Digests and fields recomputed, the old signature kept: the signature fails.
    forged = redigest(cut, entries=3, head={"seq": 3, "hash": entries[2].hash})
    assert bundle.verify_bundle(forged, SIGNER.public).kinds() == {"signature"}
    # Signature dropped: unsigned.
    m = orjson.loads(forged["manifest.json"])
    del m["signature"]
    rep = bundle.verify_bundle({**forged, "manifest.json": orjson.dumps(m)}, SIGNER.public)
    assert "signature" in rep.kinds() and not rep.ok
    # Fields left as they were (digests only): the manifest names the missing head.
    rep = bundle.verify_bundle(redigest(cut), SIGNER.public)
    assert {"signature", "manifest"} <= rep.kinds()


def test_manifest_fields_and_transcript_are_checked_against_the_content() -> None:
    import hashlib

    import orjson

    files, entries, _ = two_head_bundle()

    def resign(fs: dict[str, bytes], **fields: Any) -> dict[str, bytes]:
        m = orjson.loads(fs["manifest.json"])
        del m["signature"]
        m.update(fields)
        m["files"] = {n: hashlib.sha256(fs[n]).hexdigest() for n in m["files"]}
        return {**fs, "manifest.json": orjson.dumps({**m, "signature": SIGNER.sign(m)})}

    assert bundle.verify_bundle(resign(files), SIGNER.public).ok
    # The transcript is covered by the signed manifest's digest (not re-rendered).
    doctored = files["transcript.html"].replace("本文 2".encode(), "支払い済み".encode())
    rep = bundle.verify_bundle({**files, "transcript.html": doctored}, SIGNER.public)
    assert [p.kind for p in rep.problems] == ["manifest"]
    assert "transcript.html" in rep.problems[0].detail
    for fields in ({"entries": 4}, {"head": {"seq": 4, "hash": entries[3].hash}},
                   {"dispute": "d_other"}, {"checkpoint": {"size": 1, "root": "00"}}):
        rep = bundle.verify_bundle(resign(files, **fields), SIGNER.public)
        assert rep.kinds() == {"manifest"}, (fields, rep.problems)


def test_key_ids_are_derived_and_retirement_is_enforced() -> None:
    import orjson

    files, _, parts = two_head_bundle()
    other = Signer(Ed25519PrivateKey.generate())
    # keys.json labels another public key with the signer's id: not trusted.
    lying = [{**parts["keys"][0], "public_key_pem": public_pem(other.public)}]
    rep = bundle.verify_bundle(
        redigest({**files, "keys.json": orjson.dumps({"keys": lying})}), None)
    assert "key" in rep.kinds()
    # A checkpoint signed after its key's retirement (keys.json says so) fails.
    retired = [{**parts["keys"][0], "retired_at": 1 - RETIRED_GRACE_US - 1}]
    fs = {**files, "keys.json": orjson.dumps({"keys": retired})}
    import hashlib

    m = orjson.loads(fs["manifest.json"])
    del m["signature"]
    m["files"] = {n: hashlib.sha256(fs[n]).hexdigest() for n in m["files"]}
    fs["manifest.json"] = orjson.dumps({**m, "signature": SIGNER.sign(m)})
    rep = bundle.verify_bundle(fs, SIGNER.public)
    assert "key" in rep.kinds()
    assert any("retired" in p.detail for p in rep.problems)


def test_a_checkpoint_signed_within_the_grace_after_retirement_verifies() -> None:
    """Clock skew between nodes: signed a little after the key's retirement still verifies."""
    import hashlib

    import orjson

    files, _, parts = two_head_bundle()
    fs = {**files, "keys.json": orjson.dumps({"keys": [{**parts["keys"][0], "retired_at": 0}]})}
    m = orjson.loads(fs["manifest.json"])
    del m["signature"]
    m["files"] = {n: hashlib.sha256(fs[n]).hexdigest() for n in m["files"]}
    fs["manifest.json"] = orjson.dumps({**m, "signature": SIGNER.sign(m)})
    assert bundle.verify_bundle(fs, SIGNER.public).ok


def test_transcript_labels_may_change_without_breaking_bundles(monkeypatch: Any) -> None:
    """The verifier does not re-render transcript.html: a later renderer is no failure."""
    files, _, _ = two_head_bundle()
    real = transcript.render
    monkeypatch.setattr(transcript, "render",
                        lambda *a, **k: real(*a, **k).replace("Exported by", "Exporter"))
    rep = bundle.verify_bundle(files, SIGNER.public)
    assert rep.ok, rep.problems


def test_format_1_bundles_verify_with_a_note() -> None:
    """Bundles exported before 2026-12-07 (format /1: unsigned manifest) still verify."""
    import hashlib

    import orjson

    files, _, _ = two_head_bundle()
    m = orjson.loads(files["manifest.json"])
    del m["signature"], m["key_id"]
    m["format"] = "tsunagu-evidence-bundle/1"
    old = {**files, "manifest.json": orjson.dumps(m)}
    rep = bundle.verify_bundle(old, SIGNER.public)
    assert rep.ok, rep.problems
    assert any("format /1" in n and "not signed" in n for n in rep.notes)
    # /1 rules still bind the content: a changed entry fails.
    bad = {**old, "entries.jsonl": old["entries.jsonl"].replace(b"2", b"3", 1)}
    m["files"] = {n: hashlib.sha256(bad[n]).hexdigest() for n in m["files"]}
    assert not bundle.verify_bundle({**bad, "manifest.json": orjson.dumps(m)},
                                    SIGNER.public).ok
