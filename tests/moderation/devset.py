"""Where the labelled development set is: see `moderation.score.devset_path`.

The source of truth is ``../shared/moderation/dev.jsonl`` beside the repository (or
``TSUNAGU_MODERATION_DEVSET``); a copy of it lives in ``tests/moderation/dev.jsonl`` so a
clone on its own (CI) still scores it.
"""

from __future__ import annotations

from moderation.score import devset_path

__all__ = ["devset_path"]
