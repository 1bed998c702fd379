"""Bundles without a database: a clean one verifies; random damage never crashes the
verifier and never verifies."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.evidence import bundle, merkle
from chat.evidence.chain import Pending, extend
from chat.evidence.keys import Signer, checkpoint_body, public_pem
from chat.evidence.tree import leaf_data

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
    return bundle.build(thread="t1", dispute="d1", entries=entries,
                        checkpoint={"checkpoint": body, "signature": SIGNER.sign(body)},
                        proofs=proofs, keys=keys, transcript="<html></html>",
                        exported_by="s1", exported_at=2)


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
