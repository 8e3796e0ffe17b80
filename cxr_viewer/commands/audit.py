"""``cxr-viewer audit verify|show``: check and print the tamper-evident audit trail.

``verify`` recomputes the hash chain and exits 0 when intact, 1 naming every line that was
edited, deleted, reordered or cut short (the log is never changed). ``show [--since WHEN]``
prints one line per event (``--json``: the raw records).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cxr_viewer.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``audit`` sub-command."""
    p = subparsers.add_parser(
        "audit",
        help="verify or show the audit trail (who opened, analysed, exported what)",
        description="The audit trail is an append-only, hash-chained JSON-lines log in the "
        "per-user data folder.",
    )
    p.add_argument("--log", metavar="FILE", help="audit log file (default: the user's log)")
    sub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    v = sub.add_parser("verify", help="check the hash chain; name any edited/deleted/moved line")
    v.set_defaults(func=run_verify)
    s = sub.add_parser("show", help="print the events")
    s.add_argument("--since", metavar="WHEN", help="ISO date or date-time (UTC when no zone)")
    s.add_argument("--json", action="store_true", help="print the raw JSON records")
    s.set_defaults(func=run_show)


def run_verify(args: argparse.Namespace) -> int:
    from cxr_viewer.audit import verify

    result = verify(args.log)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.ok:
        print(f"{result.path}: {result.lines} line(s), hash chain intact")
        return 0
    for line, message in sorted(result.problems):
        print(f"{result.path}:{line}: {message}")
    print(
        f"{result.path}: NOT intact ({len(result.problems)} problem(s) in {result.lines} line(s)); "
        "the log was not changed",
        file=sys.stderr,
    )
    return 1


def run_show(args: argparse.Namespace) -> int:
    from cxr_viewer.audit import AuditLog, describe, parse_time

    since = None
    if args.since:
        try:
            since = parse_time(args.since)
        except ValueError as exc:
            raise CommandError(f"--since {args.since!r} is not an ISO date or time") from exc
    audit = AuditLog(args.log)
    if not audit.path.exists():
        print(f"{audit.path}: no audit log yet", file=sys.stderr)
        return 0
    for n, record, raw in audit.records():
        if record is None:
            print(f"{n:>5} (unreadable line: {raw[:80]!r})")
            continue
        if since is not None:
            try:
                if parse_time(str(record.get("time", ""))) < since:
                    continue
            except ValueError:
                pass
        print(json.dumps(record, sort_keys=True) if args.json else describe(record))
    return 0
