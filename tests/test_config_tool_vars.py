"""``TSUNAGU_*`` variables that tools read (not settings) pass; typos still stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.cli import main
from chat.config import TOOL_VARIABLES, ConfigError, Settings, load_settings

SECRET = "s" * 40


def test_moderation_devset_variable_is_not_an_unknown_setting() -> None:
    assert "TSUNAGU_MODERATION_DEVSET" in TOOL_VARIABLES
    s = load_settings(env={"TSUNAGU_MODERATION_DEVSET": "/tmp/dev.jsonl", "TSUNAGU_PORT": "9000"})
    assert s.port == 9000
    assert s == load_settings(env={"TSUNAGU_PORT": "9000"})


@pytest.mark.parametrize("var", ["TSUNAGU_FOO", "TSUNAGU_MODERATION_DEVSETS",
                                 "TSUNAGU_MODERATION_DEV_SET"])
def test_unknown_variables_still_fail(var: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"TSUNAGU_MODERATION_DEVSET": "/tmp/dev.jsonl", var: "1"})
    assert str(info.value) == f"{var}: unknown setting"


def test_cli_accepts_the_devset_variable_and_refuses_a_typo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSUNAGU_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TSUNAGU_JWT_SECRET", SECRET)
    monkeypatch.setenv("TSUNAGU_MODERATION_DEVSET", str(tmp_path / "dev.jsonl"))
    assert main(["token", "--sub", "alice"]) == 0
    assert capsys.readouterr().out.count(".") == 2  # a JWT
    monkeypatch.setenv("TSUNAGU_FOO", "1")
    assert main(["token", "--sub", "alice"]) == 2
    assert "TSUNAGU_FOO: unknown setting" in capsys.readouterr().err


def test_tool_variables_are_not_setting_names() -> None:
    settings = {f"TSUNAGU_{name.upper()}" for name in Settings.__dataclass_fields__}
    assert not TOOL_VARIABLES & settings
