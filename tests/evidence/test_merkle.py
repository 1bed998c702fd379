"""RFC 9162 Merkle tree: frontier root equals the recursive root; inclusion proofs."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from chat.evidence import merkle


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(str(i).encode()) for i in range(n)]


def test_small_trees_by_hand() -> None:
    a, b, c = leaves(3)
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    assert merkle.root([a]) == a
    assert merkle.root([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.root([a, b, c]) == merkle.node_hash(merkle.node_hash(a, b), c)
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


def test_frontier_root_matches_recursive_root() -> None:
    frontier: merkle.Frontier = []
    ls = leaves(70)
    for n, leaf in enumerate(ls, 1):
        frontier = merkle.frontier_append(frontier, leaf)
        assert merkle.frontier_root(frontier) == merkle.root(ls[:n])


def test_every_inclusion_proof_verifies_up_to_33_leaves() -> None:
    for n in range(1, 34):
        ls = leaves(n)
        r = merkle.root(ls)
        for i in range(n):
            proof = merkle.inclusion_proof(i, ls)
            assert merkle.verify_inclusion(i, n, ls[i], proof, r)
            assert not merkle.verify_inclusion(i, n, merkle.leaf_hash(b"other"), proof, r)
            if n > 1:
                assert not merkle.verify_inclusion((i + 1) % n, n, ls[i], proof, r) or (
                    ls[(i + 1) % n] == ls[i])


@given(st.integers(2, 200), st.data())
def test_tampered_proofs_fail(n: int, data: st.DataObject) -> None:
    ls = leaves(n)
    i = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(i, ls)
    r = merkle.root(ls)
    j = data.draw(st.integers(0, len(proof) - 1))
    bad = [*proof]
    bad[j] = bytes(32)
    assert not merkle.verify_inclusion(i, n, ls[i], bad, r)
    assert not merkle.verify_inclusion(i, n, ls[i], proof[:-1], r)


def test_every_consistency_proof_verifies_up_to_40_leaves() -> None:
    ls = leaves(40)
    roots = [merkle.root(ls[:n]) for n in range(41)]
    for n in range(1, 41):
        for m in range(1, n + 1):
            proof = merkle.consistency_proof(m, ls[:n])
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if m < n:
                assert not merkle.verify_consistency(m, n, roots[m], roots[n - 1], proof)
                assert not merkle.verify_consistency(m, n, merkle.leaf_hash(b"x"), roots[n],
                                                     proof)


@given(st.integers(2, 150), st.data())
def test_forked_history_is_not_consistent(n: int, data: st.DataObject) -> None:
    ls = leaves(n)
    m = data.draw(st.integers(1, n - 1))
    j = data.draw(st.integers(0, m - 1))
    forked = [*ls]
    forked[j] = merkle.leaf_hash(b"rewritten")
    proof = merkle.consistency_proof(m, forked)
    assert not merkle.verify_consistency(m, n, merkle.root(ls[:m]), merkle.root(forked), proof)
