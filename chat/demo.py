"""The demo (``tsunagu serve --demo``): a sample contract thread and a page to watch it.

On start the demo creates, once, a contract thread between the client 田中 (``tanaka``) and
the worker 佐藤 (``sato``) with a system message, and serves ``/demo``: both chat widgets side
by side and a link to the moderator console. The page mints short-lived tokens for the demo
users on every load — anybody who can open ``/demo`` can act as them, so the demo is for a
developer's machine only, never for a service with real users.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from notifications.events import parse_event
from notifications.setup import NOTIFICATIONS, Notifications

from .auth import mint_token
from .config import Settings
from .errors import ChatError, Conflict
from .service import ChatService

log = logging.getLogger("tsunagu.demo")

THREAD_ID = "demo-contract"
THREAD_TITLE = "ロゴ制作：たなか商店 / Logo design for Tanaka Shoten"
CLIENT = "tanaka"
WORKER = "sato"
MODERATOR = "yamamoto"
NAMES = {CLIENT: "田中", WORKER: "佐藤", MODERATOR: "山本"}
NAMES_EN = {CLIENT: "Tanaka", WORKER: "Sato", MODERATOR: "Yamamoto"}
TOKEN_TTL_S = 8 * 3600
STARTED_ID = "demo-contract-started"
STARTED_TEXT = ("契約が成立し、仮払いが完了しました。作業を開始してください。"
                " / The contract is signed and the deposit is paid: work can start.")


@dataclass(frozen=True, slots=True)
class DemoTokens:
    client: str
    worker: str
    moderator: str


def demo_tokens(settings: Settings, locale: str) -> DemoTokens:
    """Fresh tokens for the demo users (signed with the configured HS256 secret)."""
    names = NAMES if locale == "ja" else NAMES_EN

    def mint(sub: str, role: str) -> str:
        return mint_token(settings, sub, [role], name=names[sub], locale=locale,
                          ttl=TOKEN_TTL_S)

    return DemoTokens(mint(CLIENT, "client"), mint(WORKER, "worker"),
                      mint(MODERATOR, "moderator"))


async def ensure_demo_thread(service: ChatService, app: web.Application | None = None) -> None:
    """Create the demo thread and its opening events unless they exist (idempotent).

    With notifications on, the contract events (``contract.concluded``, ``deposit.paid``) go
    through the notifications intake, so the thread gets their system messages and the two
    users get inbox notices; otherwise one system message stands in for them.
    """
    if await service.store.get_thread(THREAD_ID) is None:
        try:
            await service.create_thread(
                kind="contract", title=THREAD_TITLE,
                participants=[(CLIENT, "client"), (WORKER, "worker")],
                ref={"job_id": "demo-job-1", "contract_id": "demo-contract-1"},
                stage="deposit_pending", thread_id=THREAD_ID,
            )
        except Conflict:
            pass  # another node created it first
    notifications = _notifications(app)
    if notifications is None:
        await service.post_system(THREAD_ID, STARTED_TEXT, {"event": "contract.started"},
                                  client_msg_id=STARTED_ID)
        return
    for event in demo_events(time.time()):
        try:
            await notifications.intake.handle(parse_event(orjson.dumps(event)),
                                              notifications.clock.now_us())
        except Conflict:
            pass  # applied by an earlier start (its deadline differed): nothing to do
    notifications.scheduler.wake.set()


def demo_events(now_s: float) -> list[dict[str, Any]]:
    """The contract events of the demo thread: concluded a week before its deadline, paid."""
    deadline = datetime.fromtimestamp(now_s + 7 * 86400, tz=UTC).replace(microsecond=0)
    data = {"client": CLIENT, "worker": WORKER, "amount": 50000, "currency": "JPY",
            "deadline": deadline.isoformat(), "title": "ロゴ制作",
            "client_name": NAMES[CLIENT], "worker_name": NAMES[WORKER]}
    return [
        {"id": "demo-contract-concluded", "type": "contract.concluded", "thread": THREAD_ID,
         "data": data},
        {"id": "demo-deposit-paid", "type": "deposit.paid", "thread": THREAD_ID, "data": {}},
    ]


def _notifications(app: web.Application | None) -> Notifications | None:
    return None if app is None else app.get(NOTIFICATIONS)


def demo_page(tokens: DemoTokens, locale: str) -> str:
    """The /demo page: both widgets side by side and a link to the console (no I/O)."""
    ja = locale == "ja"
    names = NAMES if ja else NAMES_EN
    attr_names = html.escape(orjson.dumps(names).decode(), quote=True)
    console = f"/static/console.html#locale={locale}&token={quote(tokens.moderator)}"
    other = "en" if ja else "ja"
    texts = {
        "title": "tsunagu デモ" if ja else "tsunagu demo",
        "lead": ("発注者の田中さんと受注者の佐藤さんの契約スレッドです。左右で送ったメッセージが"
                 "相手にすぐ届きます。連絡先を書くと、モデレーションが伏せ字にしたり保留したりします。"
                 if ja else
                 "A contract thread between the client Tanaka and the worker Sato. A message sent "
                 "on one side appears on the other at once. Try writing contact details: "
                 "moderation masks or holds them."),
        "client": "発注者 田中さん（client）" if ja else "Client: Tanaka",
        "worker": "受注者 佐藤さん（worker）" if ja else "Worker: Sato",
        "console": "モデレーター画面を開く（山本さん）" if ja else "Open the moderator console (Yamamoto)",
        "switch": "English" if ja else "日本語",
        "note": ("このページはデモ専用のトークンを発行します。本番では使わないでください。"
                 if ja else "This page hands out demo-only tokens. Never enable it in production."),
    }
    e = {k: html.escape(v) for k, v in texts.items()}

    def widget(token: str, who: str) -> str:
        return (f'<tsunagu-chat thread="{THREAD_ID}" locale="{locale}" names="{attr_names}" '
                f'token="{html.escape(token, quote=True)}" data-user="{who}"></tsunagu-chat>')

    return f"""<!doctype html>
<html lang="{locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e["title"]}</title>
<style>
  body {{ margin: 0; font-family: system-ui, "Hiragino Sans", "Noto Sans JP", sans-serif; background: #eef2f6; color: #1f2933; }}
  main {{ max-width: 1100px; margin: 0 auto; padding: 16px; }}
  h1 {{ font-size: 20px; margin: 0 0 4px; }}
  p {{ margin: 4px 0 12px; font-size: 14px; line-height: 1.6; }}
  .pair {{ display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }}
  .pair > section {{ min-width: 0; }}
  .pair h2 {{ font-size: 15px; margin: 0 0 6px; }}
  nav {{ display: flex; gap: 16px; flex-wrap: wrap; font-size: 14px; margin-bottom: 12px; }}
  .note {{ font-size: 12px; color: #7a4b00; }}
  tsunagu-chat {{ height: 600px; }}
  @media (max-width: 760px) {{ .pair {{ grid-template-columns: 1fr; }} }}
</style>
<script type="module" src="/static/tsunagu-chat.js"></script>
</head>
<body>
<main>
  <h1>{e["title"]}</h1>
  <p>{e["lead"]}</p>
  <nav>
    <a id="console-link" href="{html.escape(console, quote=True)}" target="_blank" rel="noopener">{e["console"]}</a>
    <a href="/demo?locale={other}" lang="{other}">{e["switch"]}</a>
  </nav>
  <div class="pair">
    <section aria-label="{e["client"]}"><h2>{e["client"]}</h2>{widget(tokens.client, CLIENT)}</section>
    <section aria-label="{e["worker"]}"><h2>{e["worker"]}</h2>{widget(tokens.worker, WORKER)}</section>
  </div>
  <p class="note">{e["note"]}</p>
</main>
</body>
</html>
"""


def setup_demo(app: web.Application, service: ChatService, settings: Settings) -> None:
    """Add the demo thread (on start) and the ``/demo`` page to ``app``."""
    if not settings.jwt_secret:
        raise ChatError("the demo needs TSUNAGU_JWT_SECRET to mint its tokens")

    async def on_startup(app: web.Application) -> None:
        await ensure_demo_thread(service, app)
        log.warning("demo mode: /demo hands out tokens for %s, %s and %s; development only",
                    CLIENT, WORKER, MODERATOR)

    async def page(request: web.Request) -> web.Response:
        locale = "en" if request.query.get("locale") == "en" else "ja"
        return web.Response(
            text=demo_page(demo_tokens(settings, locale), locale),
            content_type="text/html", charset="utf-8",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    app.on_startup.append(on_startup)
    app.router.add_get("/demo", page)
