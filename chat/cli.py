"""The ``tsunagu`` command: serve, migrate, token, scan, verify, purge.

Configuration errors end the command with exit status 2 and one line naming the setting.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from .config import ConfigError, Settings, load_settings, resolve_token_key


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    settings = load_settings(config_file=getattr(args, "config", None), **overrides)
    return resolve_token_key(settings)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from .app import build_app

    settings = _settings(args, host=args.host, port=args.port,
                         demo=True if args.demo else None)
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    app = build_app(settings)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                shutdown_timeout=settings.drain_timeout_s, access_log=None,
                handle_signals=True)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from .store import open_store

    settings = _settings(args)

    async def run() -> list[str]:
        store = open_store(settings)
        await store.open()
        try:
            return await store.migrate()
        finally:
            await store.close()

    applied = asyncio.run(run())
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def _token(args: argparse.Namespace) -> int:
    from .auth import mint_token

    settings = _settings(args)
    print(mint_token(settings, args.sub, args.role or ["client"], name=args.name,
                     locale=args.locale, tz=args.tz, ttl=args.ttl))
    return 0


def _scan(args: argparse.Namespace) -> int:
    from moderation.cli import scan_main

    argv: list[str] = []
    for domain in args.allow_domain:
        argv += ["--allow-domain", domain]
    for phrase in args.allow_phrase:
        argv += ["--allow-phrase", phrase]
    return int(scan_main(argv, stdin=sys.stdin, stdout=sys.stdout))


def _verify(args: argparse.Namespace) -> int:
    from .evidence.cli import verify_main

    return verify_main(args.bundle, args.public_key, as_json=args.json,
                       checkpoint=args.checkpoint)


def _purge(args: argparse.Namespace) -> int:
    from .evidence.cli import purge_main

    return purge_main(_settings(args), dry_run=args.dry_run)


def _accept_restore(args: argparse.Namespace) -> int:
    from .evidence.cli import accept_restore_main

    return accept_restore_main(_settings(args), staff=args.staff, reason=args.reason)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tsunagu", description=__doc__)
    parser.add_argument("--config", help="TOML settings file (also TSUNAGU_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the service")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--demo", action="store_true", help="create a demo thread and page")
    p.set_defaults(func=_serve)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.set_defaults(func=_migrate)

    p = sub.add_parser("token", help="print a signed token (development and tests)")
    p.add_argument("--sub", required=True, help="user id")
    p.add_argument("--role", action="append", help="role (repeatable)")
    p.add_argument("--name")
    p.add_argument("--locale", default="ja", choices=["ja", "en"])
    p.add_argument("--tz", default="Asia/Tokyo")
    p.add_argument("--ttl", type=float, default=3600.0, help="seconds")
    p.set_defaults(func=_token)

    p = sub.add_parser("scan", help="scan JSON lines on stdin for moderation findings")
    p.add_argument("--allow-domain", action="append", default=[],
                   help="a platform domain never flagged (repeatable)")
    p.add_argument("--allow-phrase", action="append", default=[],
                   help="a phrase never flagged (repeatable)")
    p.set_defaults(func=_scan)

    p = sub.add_parser("verify", help="verify an evidence bundle offline")
    p.add_argument("bundle", help="bundle: .zip, .tar.gz or directory")
    p.add_argument("--public-key", help="the published Ed25519 public key (PEM or base64)")
    p.add_argument("--checkpoint", help="a checkpoint you received earlier (JSON): the bundle "
                   "must prove its history extends it")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_verify)

    p = sub.add_parser("purge", help="purge content past retention (docs/disputes.md)")
    p.add_argument("--dry-run", action="store_true", help="list what would be purged")
    p.set_defaults(func=_purge)

    p = sub.add_parser("evidence", help="evidence operations (docs/operations.md)")
    esub = p.add_subparsers(dest="evidence_command", required=True)
    e = esub.add_parser("accept-restore", help="after a database restore: accept that the "
                        "database is behind this node's last signed checkpoint (audited)")
    e.add_argument("--staff", required=True, help="who accepts (recorded in the access audit)")
    e.add_argument("--reason", required=True, help="why, e.g. the restore's ticket")
    e.set_defaults(func=_accept_restore)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"tsunagu: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
