"""tsunagu moderation: scanner (no I/O), policy and review queue."""
