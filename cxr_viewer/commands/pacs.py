"""``cxr-viewer pacs echo|find|get|send|nodes|add-node|remove-node|cache``.

NODE is the name of a configured node (``pacs add-node``), an ad-hoc ``AE@host:port`` (DIMSE) or
an ``http(s)://.../dicom-web`` base URL (DICOMweb). Nothing connects anywhere else. Failures exit
with status 2 and one ``error:`` line.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from cxr_viewer.cli import CommandError


def register(subparsers: Any) -> None:
    """Add the ``pacs`` sub-command and its actions."""
    p = subparsers.add_parser(
        "pacs",
        help="query/retrieve from a PACS, send results to it (DIMSE or DICOMweb)",
        description="DICOM networking. NODE = a configured node name, AE@host:port (DIMSE) or "
        "an http(s)://.../dicom-web URL (DICOMweb).",
    )
    sub = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    e = sub.add_parser("echo", help="check that NODE answers (C-ECHO / QIDO-RS)")
    e.add_argument("node")
    e.set_defaults(func=run_echo)

    f = sub.add_parser("find", help="search studies on NODE (C-FIND / QIDO-RS)")
    f.add_argument("node")
    f.add_argument("--patient-id", default="")
    f.add_argument("--patient-name", default="", help="wildcards * and ? allowed")
    f.add_argument("--accession", default="")
    f.add_argument("--date", default="", help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    f.add_argument("--modality", default="", help="e.g. CR or CR,DX (any of)")
    f.add_argument("--limit", type=int, default=1000)
    f.add_argument("--json", action="store_true", help="print JSON instead of a table")
    f.set_defaults(func=run_find)

    g = sub.add_parser("get", help="retrieve a study into the local cache (or --out DIR)")
    g.add_argument("node")
    g.add_argument("study_uid")
    g.add_argument("--out", help="folder to put the study in (default: the local cache)")
    g.add_argument("--method", choices=["c-get", "c-move", "dicomweb"],
                   help="override the node's retrieve method")
    g.set_defaults(func=run_get)

    s = sub.add_parser("send", help="send DICOM files (e.g. an exported SC) to NODE")
    s.add_argument("node")
    s.add_argument("files", nargs="+")
    s.set_defaults(func=run_send)

    n = sub.add_parser("nodes", help="list the configured nodes and the local AE settings")
    n.set_defaults(func=run_nodes)

    a = sub.add_parser("add-node", help="add or replace a configured node")
    a.add_argument("name")
    a.add_argument("--ae", default="", help="the node's AE title")
    a.add_argument("--host", default="")
    a.add_argument("--port", type=int, default=0)
    a.add_argument("--url", default="", help="DICOMweb base URL")
    a.add_argument("--retrieve", choices=["auto", "dicomweb", "c-get", "c-move"], default="auto")
    a.add_argument("--tls", action="store_true", help="DIMSE over TLS")
    a.add_argument("--ca-file", default="")
    a.add_argument("--client-cert", default="")
    a.add_argument("--client-key", default="")
    a.add_argument("--auth", choices=["none", "basic", "bearer"], default="none")
    a.add_argument("--user", default="", help="for --auth basic (password asked, kept in "
                   "the OS keyring)")
    a.set_defaults(func=run_add_node)

    r = sub.add_parser("remove-node", help="remove a configured node")
    r.add_argument("name")
    r.set_defaults(func=run_remove_node)

    c = sub.add_parser("cache", help="list the local study cache, or --clear it")
    c.add_argument("--clear", action="store_true", help="delete every local copy")
    c.set_defaults(func=run_cache)


def _prompt(node: str, what: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"{what} for node {node}: ")


def _context(spec: str) -> tuple[Any, Any, Any]:
    from cxr_viewer.net.config import NodeStore, SecretStore, parse_node

    store = NodeStore.load()
    node = parse_node(spec, store)
    return node, store, SecretStore(prompt=_prompt)


def run_echo(args: argparse.Namespace) -> int:
    import time

    from cxr_viewer.net import client

    node, store, secrets = _context(args.node)
    t0 = time.perf_counter()
    how = client.echo(node, store.settings, secrets)
    print(f"{node.label}: {how} OK ({(time.perf_counter() - t0) * 1000:.0f} ms)")
    return 0


def run_find(args: argparse.Namespace) -> int:
    from cxr_viewer.net import client

    node, store, secrets = _context(args.node)
    found = client.find(
        node, store.settings, secrets, patient_id=args.patient_id,
        patient_name=args.patient_name, accession=args.accession, study_date=args.date,
        modality=args.modality, limit=args.limit,
    )
    found.sort(key=lambda s: (s.study_date, s.study_time), reverse=True)
    if args.json:
        print(json.dumps([s.to_json() for s in found], indent=1))
        return 0
    header = f"{'Date':<10} {'Patient ID':<14} {'Name':<22} {'Accession':<12} {'Mod':<7} {'N':>4}  Study UID"
    print(header)
    for s in found:
        print(
            f"{s.study_date:<10} {s.patient_id[:14]:<14} {s.patient_name[:22]:<22} "
            f"{s.accession[:12]:<12} {'/'.join(s.modalities)[:7]:<7} "
            f"{'' if s.num_instances is None else s.num_instances:>4}  {s.study_uid}"
        )
    print(f"{len(found)} stud{'y' if len(found) == 1 else 'ies'}", file=sys.stderr)
    return 0


def run_get(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from cxr_viewer.net import client
    from cxr_viewer.net.cache import StudyCache, default_cache_dir

    node, store, secrets = _context(args.node)
    if args.method:
        node = dataclasses.replace(node, retrieve=args.method)
    if args.out:
        cache = StudyCache(Path(args.out))
    else:
        cache = StudyCache(default_cache_dir(), store.settings.cache_limit_mb * 1024 * 1024)

    def progress(done: int, total: int | None) -> None:
        if sys.stderr.isatty():
            print(f"\r{done}/{total or '?'} instances", end="", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    folder = client.retrieve(node, args.study_uid, cache, store.settings, secrets, progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    n = len(cache.instances(args.study_uid))
    size = sum(p.stat().st_size for p in cache.instances(args.study_uid))
    dt = time.perf_counter() - t0
    print(f"{n} instance(s), {size / 1e6:.1f} MB in {dt:.2f} s by "
          f"{node.retrieve_method.upper()} -> {folder}")
    return 0


def run_send(args: argparse.Namespace) -> int:
    from cxr_viewer.net import client

    node, store, secrets = _context(args.node)
    files = [Path(f) for f in args.files]
    for f in files:
        if not f.is_file():
            raise CommandError(f"{f}: no such file")
    n, how = client.send(node, files, store.settings, secrets)
    print(f"{n} file(s) sent to {node.label} by {how}")
    return 0


def run_nodes(args: argparse.Namespace) -> int:
    from cxr_viewer.net.config import NodeStore

    store = NodeStore.load()
    s = store.settings
    print(f"Local AE title {s.ae_title}, listener port {s.listener_port}, cache limit "
          f"{s.cache_limit_mb} MB  ({store.path})")
    if not store.nodes:
        print("No node configured: the viewer makes no network connection.")
    for n in store.nodes:
        extra = []
        if n.tls:
            extra.append("TLS")
        if n.auth != "none":
            extra.append(f"auth {n.auth}")
        print(f"  {n.name:<16} {n.label}  retrieve {n.retrieve_method}"
              + (f"  ({', '.join(extra)})" if extra else ""))
    return 0


def run_add_node(args: argparse.Namespace) -> int:
    from cxr_viewer.net.config import Node, NodeStore, SecretStore

    store = NodeStore.load()
    try:
        node = Node(
            name=args.name, ae_title=args.ae, host=args.host, port=args.port,
            dicomweb_url=args.url.rstrip("/"), retrieve=args.retrieve, tls=args.tls,
            ca_file=args.ca_file, client_cert=args.client_cert, client_key=args.client_key,
            auth=args.auth, username=args.user,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    if node.auth != "none":
        secrets = SecretStore()
        what = "password" if node.auth == "basic" else "token"
        if not sys.stdin.isatty():
            raise CommandError(f"--auth {node.auth}: run in a terminal to type the {what}")
        secrets.set(node.name, what, getpass.getpass(f"{what} for {node.name}: "))
        if not secrets.persistent:
            print(f"note: no OS keyring: the {what} is asked again on each run", file=sys.stderr)
    store.put(node)
    store.save()
    print(f"saved node {node.label} in {store.path}")
    return 0


def run_remove_node(args: argparse.Namespace) -> int:
    from cxr_viewer.net.config import NodeStore, SecretStore

    store = NodeStore.load()
    if store.get(args.name) is None:
        raise CommandError(f"no configured node named {args.name!r}")
    store.remove(args.name)
    store.save()
    secrets = SecretStore()
    for what in ("password", "token"):
        secrets.delete(args.name, what)
    print(f"removed node {args.name}")
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from cxr_viewer.net.cache import StudyCache, default_cache_dir

    cache = StudyCache(default_cache_dir())
    if args.clear:
        print(f"deleted {cache.delete_all()} local stud(y/ies) from {cache.folder}")
        return 0
    studies = cache.studies()
    for s in studies:
        print(f"{s.uid}  {s.files:>4} files  {s.size_bytes / 1e6:8.1f} MB  "
              f"{'complete' if s.complete else 'INCOMPLETE'}  {s.path}")
    print(f"{len(studies)} stud(y/ies), {sum(s.size_bytes for s in studies) / 1e6:.1f} MB "
          f"in {cache.folder}")
    return 0
