"""Dispute evidence: a tamper-evident, retained, exportable log of every thread.

Modules, from the pure core outwards:

* :mod:`.canonical` - RFC 8785 canonical JSON (orjson fast path, ``rfc8785`` otherwise).
* :mod:`.chain` - log entries, their hashes and the per-thread chain; chain verification
  that names what was altered, removed, reordered or inserted. No I/O.
* :mod:`.merkle` - RFC 9162 Merkle tree hashes, compact frontier, inclusion proofs. No I/O.
* :mod:`.keys` - Ed25519 checkpoint signing keys and signed checkpoints.
* :mod:`.log` - appending entries inside the caller's transaction (async and SQLite sync).
* :mod:`.tree` - committing thread heads into the service-wide tree; signed checkpoints,
  refused unless the stored tree extends what was signed before.
* :mod:`.bundle` - evidence bundles (signed manifest): building them and verifying them
  offline.
* :mod:`.retention` - what the purge job removes, and the job itself.
* :mod:`.service`, :mod:`.http`, :mod:`.cli` - disputes, the staff API, ``tsunagu verify``.

This package's ``__init__`` imports nothing, so the stores can import :mod:`.log`.
"""
