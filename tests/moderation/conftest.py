"""Readable ids for the parametrized messages of `test_ordinary_talk.py`.

pytest escapes non-ASCII ids (``\\u304a\\u4e16...``); a Japanese message is only readable
as itself.  Only the argument names below, used by that module alone, are affected.
"""

from __future__ import annotations

from typing import Any

import pytest

_READABLE = frozenset({"ja_text", "en_text", "policy_text", "handle_case", "still_case"})
_MAX = 60


def pytest_make_parametrize_id(config: pytest.Config, val: Any, argname: str) -> str | None:
    if argname not in _READABLE:
        return None
    text = val if isinstance(val, str) else str(val[0])
    return text if len(text) <= _MAX else text[: _MAX - 3] + "..."
