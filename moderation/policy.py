"""Moderation policy: from findings, the stage of the contract and the sender's role, an action.

The policy is data (`policy.toml`, loaded once with tomllib); `Policy.decide` and `mask`
are pure functions.  See docs/moderation.md for the file format.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from moderation.findings import CATEGORIES, SEVERITIES, Finding

ACTIONS: Final[tuple[str, ...]] = ("allow", "flag", "mask", "hold", "block")
STAGES: Final[tuple[str, ...]] = ("inquiry", "deposit_pending", "in_progress", "delivered", "closed")
ROLES: Final[tuple[str, ...]] = ("client", "worker")
MASK_CHAR: Final = "●"


class PolicyError(ValueError):
    """The policy file is invalid; the message names the offending key."""


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    findings: tuple[Finding, ...]
    sender_warning: dict[str, str] | None
    recipient_warning: dict[str, str] | None
    risk: int


# The decision for no findings (immutable: one instance serves every call).
_ALLOW_NOTHING: Final = Decision("allow", (), None, None, 0)


@dataclass(frozen=True, slots=True)
class Policy:
    actions: Mapping[tuple[str, str], str]  # (category, stage) -> action
    role_actions: Mapping[tuple[str, str, str], str]  # (role, category, stage) -> action
    sender_warnings: Mapping[str, dict[str, str]]
    recipient_warnings: Mapping[str, dict[str, str]]
    risk_weights: Mapping[str, int]
    high_severity_steps: int = 1
    max_action: str = "hold"
    # Optional texts for a worker's message: what the worker sender reads, and what its
    # recipients (the client) read. The defaults above are written for a client's message
    # to a worker (the usual scam: "you never need to pay to get work").
    worker_sender_warnings: Mapping[str, dict[str, str]] = field(default_factory=dict)
    client_recipient_warnings: Mapping[str, dict[str, str]] = field(default_factory=dict)
    # Optional texts per stage, (category, stage) -> text: they replace the defaults above
    # (and the worker ones) in that stage, e.g. contact exchange during the contract, where
    # "restricted before a contract" would be wrong.
    stage_sender_warnings: Mapping[tuple[str, str], dict[str, str]] = field(
        default_factory=dict)
    stage_recipient_warnings: Mapping[tuple[str, str], dict[str, str]] = field(
        default_factory=dict)

    @classmethod
    def load(cls, path: str | None = None) -> Policy:
        """Load ``path``, or the packaged default policy when ``path`` is None."""
        if path is None:
            raw = resources.files("moderation").joinpath("policy.toml").read_bytes()
        else:
            raw = Path(path).read_bytes()
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PolicyError(f"policy file is not valid TOML: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        _no_extra(data, ("escalation", "risk", "actions", "roles", "warnings"), "policy")
        actions: dict[tuple[str, str], str] = {}
        table = _table(data, "actions")
        for category in CATEGORIES:
            stages = _table(table, category, f"actions.{category}")
            for stage in STAGES:
                actions[(category, stage)] = _action(stages, stage, f"actions.{category}.{stage}")
            _no_extra(stages, STAGES, f"actions.{category}")
        _no_extra(table, CATEGORIES, "actions")

        role_actions: dict[tuple[str, str, str], str] = {}
        roles = data.get("roles", {})
        if not isinstance(roles, dict):
            raise PolicyError("roles must be a table")
        if roles:
            _no_extra(roles, ROLES, "roles")
            for role in roles:
                per_cat = _table(roles, role, f"roles.{role}")
                _no_extra(per_cat, CATEGORIES, f"roles.{role}")
                for cat_name in per_cat:
                    by_stage = _table(per_cat, cat_name, f"roles.{role}.{cat_name}")
                    _no_extra(by_stage, STAGES, f"roles.{role}.{cat_name}")
                    for stage in by_stage:
                        key = f"roles.{role}.{cat_name}.{stage}"
                        role_actions[(role, cat_name, stage)] = _action(by_stage, stage, key)

        warnings = _table(data, "warnings")
        sender: dict[str, dict[str, str]] = {}
        recipient: dict[str, dict[str, str]] = {}
        worker_sender: dict[str, dict[str, str]] = {}
        client_recipient: dict[str, dict[str, str]] = {}
        stage_sender: dict[tuple[str, str], dict[str, str]] = {}
        stage_recipient: dict[tuple[str, str], dict[str, str]] = {}
        _no_extra(warnings, CATEGORIES, "warnings")
        for category in CATEGORIES:
            w = _table(warnings, category, f"warnings.{category}")
            _no_extra(w, ("sender", "recipient", "sender_worker", "recipient_client",
                          "stages"), f"warnings.{category}")
            if "stages" in w:
                by_stage = _table(w, "stages", f"warnings.{category}.stages")
                _no_extra(by_stage, STAGES, f"warnings.{category}.stages")
                for stage in by_stage:
                    name = f"warnings.{category}.stages.{stage}"
                    texts = _table(by_stage, stage, name)
                    _no_extra(texts, ("sender", "recipient"), name)
                    if not texts:
                        raise PolicyError(f"{name} needs a sender or recipient text")
                    if "sender" in texts:
                        stage_sender[(category, stage)] = _texts(texts, "sender",
                                                                 f"{name}.sender")
                    if "recipient" in texts:
                        stage_recipient[(category, stage)] = _texts(texts, "recipient",
                                                                    f"{name}.recipient")
            sender[category] = _texts(w, "sender", f"warnings.{category}.sender")
            recipient[category] = _texts(w, "recipient", f"warnings.{category}.recipient")
            if "sender_worker" in w:
                worker_sender[category] = _texts(w, "sender_worker",
                                                 f"warnings.{category}.sender_worker")
            if "recipient_client" in w:
                client_recipient[category] = {
                    **_texts(w, "recipient_client", f"warnings.{category}.recipient_client"),
                    "audience": "client"}

        risk = data.get("risk", {"low": 10, "medium": 25, "high": 45})
        weights: dict[str, int] = {}
        for sev in SEVERITIES:
            value = risk.get(sev) if isinstance(risk, dict) else None
            if not isinstance(value, int) or value < 0:
                raise PolicyError(f"risk.{sev} must be a non-negative integer")
            weights[sev] = value

        esc = data.get("escalation", {})
        if not isinstance(esc, dict):
            raise PolicyError("escalation must be a table")
        steps = esc.get("high_severity_steps", 1)
        if not isinstance(steps, int) or not 0 <= steps <= len(ACTIONS):
            raise PolicyError("escalation.high_severity_steps must be an integer 0-5")
        max_action = esc.get("max_action", "hold")
        if max_action not in ACTIONS:
            raise PolicyError(f"escalation.max_action: unknown action {max_action!r}")
        return cls(actions, role_actions, sender, recipient, weights, steps, str(max_action),
                   worker_sender, client_recipient, stage_sender, stage_recipient)

    def decide(self, findings: Sequence[Finding], *, stage: str, sender_role: str) -> Decision:
        """The action for a message given its findings; pure, no I/O."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        # Roles without overrides (team "member", "observer") get the stage defaults.
        if not findings:
            return _ALLOW_NOTHING
        level = 0
        top_category: str | None = None
        for category in CATEGORIES:
            in_cat = [f for f in findings if f.category == category]
            if not in_cat:
                continue
            action = self.role_actions.get(
                (sender_role, category, stage), self.actions[(category, stage)]
            )
            rank = ACTIONS.index(action)
            if any(f.severity == "high" for f in in_cat) and rank > 0:
                cap = ACTIONS.index(self.max_action)
                rank = max(rank, min(rank + self.high_severity_steps, cap))
            if top_category is None or rank > level:
                level, top_category = rank, category
        risk = min(100, sum(self.risk_weights[f.severity] for f in findings))
        action = ACTIONS[level]
        if action == "allow" or top_category is None:
            return Decision(action, tuple(findings), None, None, risk)
        by_worker = sender_role == "worker"
        key = (top_category, stage)
        sender = (self.stage_sender_warnings.get(key)
                  or (self.worker_sender_warnings.get(top_category) if by_worker else None)
                  or self.sender_warnings[top_category])
        recipient = (self.stage_recipient_warnings.get(key)
                     or (self.client_recipient_warnings.get(top_category) if by_worker
                         else None)
                     or self.recipient_warnings[top_category])
        return Decision(action, tuple(findings), dict(sender), dict(recipient), risk)


def mask(text: str, findings: Sequence[Finding], message_index: int) -> str:
    """Replace every finding span of message ``message_index`` by ``●`` (same length)."""
    chars = list(text)
    for f in findings:
        if f.message_index != message_index:
            continue
        for i in range(max(0, f.start), min(len(chars), f.end)):
            if not chars[i].isspace():
                chars[i] = MASK_CHAR
    return "".join(chars)


def _table(data: Mapping[str, Any], key: str, name: str | None = None) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise PolicyError(f"missing or invalid table {name or key!r}")
    return value


def _action(table: Mapping[str, Any], key: str, name: str) -> str:
    value = table.get(key)
    if value not in ACTIONS:
        raise PolicyError(f"{name}: expected one of {', '.join(ACTIONS)}, got {value!r}")
    return str(value)


def _texts(table: Mapping[str, Any], key: str, name: str) -> dict[str, str]:
    value = _table(table, key, name)
    out: dict[str, str] = {}
    for lang in ("ja", "en"):
        text = value.get(lang)
        if not isinstance(text, str) or not text:
            raise PolicyError(f"{name}.{lang} must be a non-empty string")
        out[lang] = text
    return out


def _no_extra(table: Mapping[str, Any], allowed: Sequence[str], name: str) -> None:
    for key in table:
        if key not in allowed:
            raise PolicyError(f"unknown key {name}.{key}" if name != "policy" else f"unknown key {key}")
