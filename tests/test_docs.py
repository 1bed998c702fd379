"""The documentation keeps up with the code.

* Every setting is in docs/configuration.md.
* Every HTTP route the real application registers (method + path template, all optional
  components on) is an operation of docs/openapi.yaml and a line of docs/http-api.md, and
  openapi.yaml documents no operation the application does not have.
* Every frame type the gateway accepts (``chat.frames.decode``) and every frame type the code
  pushes (each ``Event(channel, "<kind>", ...)`` published anywhere in chat/, moderation/ and
  notifications/, and each ``{"type": "<type>"}`` frame written by chat/frames.py and
  chat/session.py) is a message of docs/asyncapi.yaml and a row of docs/protocol.md, and
  asyncapi.yaml documents no frame type the code does not have. So are the ``update``
  actions, the WebSocket error codes and the close codes.

The YAML documents are loaded with PyYAML (``yaml.safe_load``, a ``test`` extra) and every
check reads the parsed documents: openapi.yaml's operations are the (METHOD, path) pairs under
``paths``; asyncapi.yaml's frame types are the ``components.messages`` whose ``name`` is their
payload's ``properties.type.const``.
"""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from chat.config import Secret, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIG_DOC = DOCS / "configuration.md"
OPENAPI = DOCS / "openapi.yaml"
ASYNCAPI = DOCS / "asyncapi.yaml"
PROTOCOL = DOCS / "protocol.md"
HTTP_DOC = DOCS / "http-api.md"
SOURCE_PACKAGES = ("chat", "moderation", "notifications")
# Modules that write frames to sockets themselves (besides fan-out events).
FRAME_WRITERS = ("chat/frames.py", "chat/session.py", "chat/gateway.py")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Error codes that never reach an ``error`` frame: an invalid token closes the socket with
# 4001, an oversized frame with 1009.
NOT_ERROR_FRAMES = frozenset({"unauthorized", "too_large"})


def test_every_setting_is_documented() -> None:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    missing = [f.name for f in fields(Settings)
               if f"`TSUNAGU_{f.name.upper()}`" not in text or f"`{f.name}`" not in text]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"


def test_configuration_table_is_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_config_doc.py"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- reading the YAML documents ----------------------------------------------------------

def load_yaml(text: str) -> Any:
    """``text`` parsed with ``yaml.safe_load``; the document must be a mapping."""
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict), "the document is not a YAML mapping"
    return doc


def load_doc(path: Path) -> Any:
    return load_yaml(path.read_text(encoding="utf-8"))


def openapi_operations(openapi: Any) -> set[tuple[str, str]]:
    """(METHOD, path template) of every operation under ``paths``."""
    return {(method.upper(), path) for path, item in openapi["paths"].items()
            for method in item if method in HTTP_METHODS}


def asyncapi_messages(asyncapi: Any) -> dict[str, tuple[Any, Any, Any]]:
    """Message key -> (``name``, the payload's ``type`` const, the message)."""
    out: dict[str, tuple[Any, Any, Any]] = {}
    for key, message in asyncapi["components"]["messages"].items():
        frame_type = (message.get("payload") or {}).get("properties", {}).get("type") or {}
        out[key] = (message.get("name"), frame_type.get("const"), message)
    return out


def documented_frame_types(asyncapi: Any) -> set[str]:
    """Frame types with a message whose ``name`` and payload ``type`` const agree."""
    return {const for name, const, _ in asyncapi_messages(asyncapi).values()
            if isinstance(const, str) and name == const}


def payload_enum(message: Any, field: str) -> set[Any]:
    """The ``enum`` of property ``field`` of a message's payload."""
    enum = message["payload"]["properties"].get(field, {}).get("enum")
    assert isinstance(enum, list), f"the {message.get('name')} message has no {field} enum"
    return set(enum)


def first_cells(markdown: str) -> set[str]:
    """The first cell of every table row of ``markdown``, without backticks."""
    return {line.split("|")[1].strip().strip("`") for line in markdown.splitlines()
            if line.startswith("|") and line.count("|") >= 3}


# --- what the code registers, accepts and sends --------------------------------------------

def registered_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(METHOD, path template) of every route of the real app, every component switched on."""
    from aiohttp import web

    from chat.app import build_app

    settings = Settings(jwt_secret=Secret("docs-test-" + "x" * 32), data_dir=str(tmp_path),
                        moderation_enabled=True, notify_enabled=True, demo=True)
    app = build_app(settings)  # no I/O: the resources open when the app starts
    routes: set[tuple[str, str]] = set()
    for route in app.router.routes():
        if route.method == "HEAD":  # aiohttp adds HEAD to every GET route
            continue
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/{path}"
        routes.add((route.method, path))
    return routes


def _python_files() -> Iterator[tuple[str, ast.Module]]:
    for package in SOURCE_PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            yield file.relative_to(ROOT).as_posix(), ast.parse(file.read_text(encoding="utf-8"))


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _event_parts(call: ast.Call) -> tuple[ast.expr | None, ast.expr | None]:
    """The ``kind`` and ``payload`` arguments of an ``Event(...)`` call."""
    args: list[ast.expr | None] = [*call.args, None, None, None]
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    return kw.get("kind", args[1]), kw.get("payload", args[2])


def client_frame_types() -> set[str]:
    """The ``case "<type>":`` values of ``chat.frames.decode``: the frames the gateway accepts."""
    tree = ast.parse((ROOT / "chat" / "frames.py").read_text(encoding="utf-8"))
    decode = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                  and n.name == "decode")
    types = {case.pattern.value.value for n in ast.walk(decode) if isinstance(n, ast.Match)
             for case in n.cases if isinstance(case.pattern, ast.MatchValue)
             and isinstance(case.pattern.value, ast.Constant)}
    assert types, "found no frame types in chat.frames.decode"
    return {str(t) for t in types}


def pushed_frame_types() -> dict[str, str]:
    """Frame type -> where the code sends it (file:line)."""
    found: dict[str, str] = {}
    for rel, tree in _python_files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _callee(node) == "Event":
                kind = _literal(_event_parts(node)[0])
                if kind is not None:  # Event.from_doc rebuilds events it received: not a literal
                    found.setdefault(kind, f"{rel}:{node.lineno}")
            elif isinstance(node, ast.Dict) and rel in FRAME_WRITERS:
                for key, value in zip(node.keys, node.values, strict=True):
                    frame_type = _literal(value)
                    if _literal(key) == "type" and frame_type is not None:
                        found.setdefault(frame_type, f"{rel}:{node.lineno}")
    return found


def update_actions() -> dict[str, str]:
    """The ``action`` values of ``update`` events -> where the code publishes them."""
    found: dict[str, str] = {}
    for rel, tree in _python_files():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            action: str | None = None
            if _callee(node) == "_publish_update" and len(node.args) >= 2:
                action = _literal(node.args[1])
            elif _callee(node) == "Event":
                kind, payload = _event_parts(node)
                if _literal(kind) == "update" and isinstance(payload, ast.Dict):
                    action = next((_literal(v) for k, v in zip(payload.keys, payload.values,
                                                               strict=True)
                                   if _literal(k) == "action"), None)
            if action is not None:
                found.setdefault(action, f"{rel}:{node.lineno}")
    return found


def ws_error_codes() -> set[str]:
    from chat import errors

    codes: set[str] = set()
    todo: list[type[errors.ChatError]] = [errors.ChatError]
    while todo:
        cls = todo.pop()
        codes.add(cls.code)
        todo.extend(cls.__subclasses__())
    return codes - NOT_ERROR_FRAMES


def close_codes() -> dict[str, int]:
    from chat import errors

    return {name: value for name, value in vars(errors).items()
            if name.startswith("CLOSE_") and isinstance(value, int)}


# --- the checks ----------------------------------------------------------------------------

def test_api_documents_are_openapi_3_1_and_asyncapi_3() -> None:
    assert str(load_doc(OPENAPI)["openapi"]).startswith("3.1")
    asyncapi = load_doc(ASYNCAPI)
    assert str(asyncapi["asyncapi"]).startswith("3.")
    channel = set(asyncapi["channels"]["ws"]["messages"])
    assert channel == set(asyncapi["components"]["messages"]), "every message is on the ws channel"


def test_every_registered_http_route_is_in_openapi_and_nothing_else(tmp_path: Path) -> None:
    """Method + path template of every route of the built app vs. openapi.yaml's operations."""
    routes = registered_routes(tmp_path)
    assert ("POST", "/v1/events") in routes and ("GET", "/demo") in routes  # all components on
    documented = openapi_operations(load_doc(OPENAPI))
    missing = sorted(routes - documented)
    assert missing == [], f"routes missing from docs/openapi.yaml: {missing}"
    stale = sorted(documented - routes)
    assert stale == [], f"docs/openapi.yaml documents routes the app does not have: {stale}"


def test_every_registered_http_route_is_in_http_api_md(tmp_path: Path) -> None:
    text = HTTP_DOC.read_text(encoding="utf-8")
    missing = sorted(f"{m} {p}" for m, p in registered_routes(tmp_path)
                     if f"`{m} {p}`" not in text)
    assert missing == [], f"routes missing from docs/http-api.md: {missing}"


def received_frame_types(asyncapi: Any) -> set[str]:
    """Frame types ``t`` with a ``receive<T>`` operation that receives channel message ``t``."""
    received: set[str] = set()
    for key, op in (asyncapi.get("operations") or {}).items():
        if not key.startswith("receive") or op.get("action") != "receive":
            continue
        prefix = "#/channels/ws/messages/"
        refs = {str(m.get("$ref")) for m in op.get("messages") or [] if isinstance(m, dict)}
        received |= {ref.removeprefix(prefix) for ref in refs if ref.startswith(prefix)
                     and key == f"receive{ref.removeprefix(prefix).title()}"}
    return received


def test_every_accepted_client_frame_is_in_asyncapi_and_protocol() -> None:
    """Each type ``chat.frames.decode`` accepts: an asyncapi message and a protocol.md row."""
    asyncapi = load_doc(ASYNCAPI)
    protocol = PROTOCOL.read_text(encoding="utf-8")
    documented = documented_frame_types(asyncapi)
    received = received_frame_types(asyncapi)
    types = client_frame_types()
    assert {"hello", "send", "token"} <= types
    rows = first_cells(protocol)
    missing = sorted(t for t in types if t not in documented or t not in rows
                     or t not in received)
    assert missing == [], f"client frames missing from docs/asyncapi.yaml or protocol.md: {missing}"


def test_every_pushed_frame_type_is_in_asyncapi_and_protocol() -> None:
    """Each frame type the code sends (fan-out event kinds, ok/error, message, update)."""
    documented = documented_frame_types(load_doc(ASYNCAPI))
    protocol = PROTOCOL.read_text(encoding="utf-8")
    pushed = pushed_frame_types()
    assert {"ok", "error", "message", "update", "review", "notification"} <= set(pushed)
    rows = first_cells(protocol)
    missing = sorted(f"{t} ({where})" for t, where in pushed.items()
                     if t not in documented or t not in rows)
    assert missing == [], f"pushed frames missing from docs/asyncapi.yaml or protocol.md: {missing}"


def test_asyncapi_documents_only_frames_the_code_has() -> None:
    asyncapi = load_doc(ASYNCAPI)
    documented = documented_frame_types(asyncapi)
    stale = sorted(documented - client_frame_types() - set(pushed_frame_types()))
    assert stale == [], f"docs/asyncapi.yaml documents frame types the code lacks: {stale}"
    unnamed = sorted(k for k, (name, const, _) in asyncapi_messages(asyncapi).items()
                     if const is None or name != const)
    assert unnamed == [], f"asyncapi messages whose name is not their payload's type: {unnamed}"


def test_update_actions_error_codes_and_close_codes_are_documented() -> None:
    asyncapi = load_doc(ASYNCAPI)
    protocol = PROTOCOL.read_text(encoding="utf-8")
    messages = asyncapi_messages(asyncapi)

    documented_actions = payload_enum(messages["update"][2], "action")
    actions = update_actions()
    assert {"edit", "delete", "thanks", "unmask"} <= set(actions)
    row = next((ln for ln in protocol.splitlines() if ln.startswith("| `update` |")), "")
    missing = sorted(f"{a} ({w})" for a, w in actions.items()
                     if a not in documented_actions or f"`{a}`" not in row)
    assert missing == [], f"update actions missing from the docs: {missing}"

    documented_codes = payload_enum(messages["error"][2], "code")
    rows = first_cells(protocol)
    missing = sorted(c for c in ws_error_codes() if c not in documented_codes or c not in rows)
    assert missing == [], f"WebSocket error codes missing from the docs: {missing}"

    channel = asyncapi["channels"]["ws"]["description"]
    assert isinstance(channel, str), "channels.ws has no description"
    missing = sorted(f"{name}={code}" for name, code in close_codes().items()
                     if f"{code} " not in channel or str(code) not in rows)
    assert missing == [], f"close codes missing from docs/asyncapi.yaml or protocol.md: {missing}"


def test_the_document_checks_can_fail() -> None:
    """The checks above are real: a route, frame or enum value left out is noticed."""
    text = OPENAPI.read_text(encoding="utf-8")
    assert ("POST", "/v1/events") in openapi_operations(load_yaml(text))
    trimmed = text.replace("\n  /v1/events:\n    post:\n", "\n  /v1/events:\n    x-gone:\n")
    assert trimmed != text
    assert ("POST", "/v1/events") not in openapi_operations(load_yaml(trimmed))

    asyncapi_text = ASYNCAPI.read_text(encoding="utf-8")
    asyncapi = load_yaml(asyncapi_text)
    assert "evidence_checkpoint" in documented_frame_types(asyncapi)
    renamed = asyncapi_text.replace("type: {const: evidence_checkpoint}", "type: {const: other}")
    assert renamed != asyncapi_text
    assert "evidence_checkpoint" not in documented_frame_types(load_yaml(renamed))

    assert "send" in received_frame_types(asyncapi)
    unreceived = copy.deepcopy(asyncapi)
    unreceived["operations"]["receiveSend"]["action"] = "send"
    assert "send" not in received_frame_types(unreceived)

    assert "unmask" in payload_enum(asyncapi["components"]["messages"]["update"], "action")
    shrunk = copy.deepcopy(asyncapi)
    shrunk["components"]["messages"]["update"]["payload"]["properties"]["action"]["enum"].remove(
        "unmask")
    assert "unmask" not in payload_enum(shrunk["components"]["messages"]["update"], "action")
