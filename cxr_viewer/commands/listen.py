"""``cxr-viewer listen``: a C-STORE SCP that stores pushed studies into the inbox.

Runs until interrupted (Ctrl-C / SIGTERM). Each stored instance prints one line; refused ones
(undecodable, not an image) print why and go to the quarantine folder. With ``--analyse`` chest
radiographs are analysed as they arrive (one dedicated thread) and a JSON result is written to
``<inbox>-ai/<study>/<sop>.json``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from cxr_viewer.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``listen`` sub-command."""
    p = subparsers.add_parser(
        "listen",
        help="receive studies pushed by a PACS or modality (C-STORE SCP)",
        description="Listen for DICOM C-STORE and store each instance atomically into the inbox. "
        "Only the configured nodes' AE titles (or --accept-from) may send, unless --accept-any.",
    )
    p.add_argument("--port", type=int, help="TCP port (default: the listener port setting)")
    p.add_argument("--ae", help="our AE title (default: the local AE title setting)")
    p.add_argument("--host", default="", help="address to bind (default: all)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--accept-from", default="", help="calling AE titles allowed, AE,AE,...")
    group.add_argument("--accept-any", action="store_true", help="accept any calling AE title")
    p.add_argument("--inbox", help="folder for received studies (default: the per-user inbox)")
    p.add_argument("--analyse", action="store_true",
                   help="run the AI on chest radiographs as they arrive")
    p.add_argument("--model", help="model bundle for --analyse (default: the bundled model)")
    p.add_argument("--tls-cert", default="", help="PEM certificate: listen with TLS")
    p.add_argument("--tls-key", default="", help="PEM private key for --tls-cert")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cxr-viewer listen`` until interrupted."""
    from cxr_viewer.net.cache import default_inbox_dir
    from cxr_viewer.net.config import NodeStore, check_ae_title
    from cxr_viewer.net.listener import Arrival, StorageListener, server_ssl_context

    store = NodeStore.load()
    try:
        ae = check_ae_title(args.ae or store.settings.ae_title)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    port = args.port if args.port is not None else store.settings.listener_port
    inbox = Path(args.inbox) if args.inbox else default_inbox_dir()
    accept = [a.strip() for a in args.accept_from.split(",") if a.strip()]
    if not accept and not args.accept_any:
        accept = list(store.known_ae_titles())
    accept_any = args.accept_any or (store.settings.accept_any and not args.accept_from)
    ssl_ctx = None
    if args.tls_cert:
        try:
            ssl_ctx = server_ssl_context(args.tls_cert, args.tls_key)
        except (OSError, ValueError) as exc:
            raise CommandError(f"{args.tls_cert}: cannot use for TLS ({exc})") from exc

    analyser = None
    if args.analyse:
        from cxr_viewer.net.analyse import ArrivalAnalyser

        def report(a: Arrival, result: dict[str, Any]) -> None:
            if "findings" in result:
                top = ", ".join(
                    f"{f['finding']} {f['probability']:.2f}" for f in result["findings"][:3]
                )
                print(f"AI {a.sop_uid}: {top}", flush=True)
            else:
                why = result.get("not_analysed") or result.get("error")
                print(f"AI {a.sop_uid}: not analysed: {why}", flush=True)

        analyser = ArrivalAnalyser(inbox.with_name(inbox.name + "-ai"), args.model, report)
        analyser.start()

    def arrived(a: Arrival) -> None:
        print(f"stored {a.path} (from {a.calling_ae})", flush=True)
        if analyser is not None:
            analyser.submit(a)

    def refused(calling: str, reason: str) -> None:
        print(f"refused an instance from {calling}: {reason}", flush=True)

    listener = StorageListener(
        inbox, ae, port, host=args.host, accept_from=accept, accept_any=accept_any,
        on_arrival=arrived, on_refused=refused, ssl_context=ssl_ctx,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    listener.start()
    who = "any calling AE" if accept_any else "calling AE " + ", ".join(accept)
    print(f"listening as {ae} on port {listener.port}{' (TLS)' if ssl_ctx else ''}, accepting "
          f"{who}; inbox {inbox}, quarantine {listener.quarantine}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        if analyser is not None:
            analyser.stop()
        print(f"stopped: {listener.stored} stored, {listener.refused} refused", file=sys.stderr)
    return 0
