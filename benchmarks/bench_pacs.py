"""PACS throughput against a real Orthanc, beside dcmtk in the same run.

1. Retrieve a 20-instance study built from the corpus's chest radiographs (decompressed to
   Explicit VR Little Endian so that every peer moves the same bytes) by C-GET, C-MOVE and
   WADO-RS, beside dcmtk ``getscu`` and ``movescu``: MB/s and the ratio to dcmtk (target >= 0.8).
2. Listener ingest: dcmtk ``storescu`` pushes the same 20 instances, then 200 small ones, to our
   listener and to dcmtk ``storescp``: instances/s and the ratio (target >= 0.8).
3. Arrival to AI result for a pushed chest radiograph, model loaded (target <= 2 s).

Runs are interleaved (each method once per round) and the median of the rounds is reported.
Usage: ``python benchmarks/bench_pacs.py [--rounds 3] [--out results.md]``.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks._common import markdown_table  # noqa: E402
from cxr_viewer.net import client  # noqa: E402
from cxr_viewer.net.cache import StudyCache  # noqa: E402
from cxr_viewer.net.config import NetSettings, Node  # noqa: E402
from cxr_viewer.net.listener import Arrival, StorageListener  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402
from tests.orthanc_fixture import ORTHANC_AE, TEST_AE, OrthancServer, free_port  # noqa: E402

CHEST = ["dicom-test-files__WG04_RG1_J2KI.dcm", "dicom-test-files__WG04_RG1_JLSN.dcm",
         "torchxrayvision__SIIM_CXR_850819.dcm"]


def build_study(out: Path, n: int = 20) -> tuple[str, list[Path]]:
    """``n`` instances of one study from the corpus chest radiographs, uncompressed."""
    from pydicom import dcmread
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    corpus = SHARED_DATA / "dicom-corpus" / "corpus"
    if not corpus.is_dir():
        sys.exit(f"bench_pacs: the corpus is missing ({corpus})")
    sources = []
    for name in CHEST:
        ds = dcmread(corpus / name)
        ds.decompress()
        sources.append(ds)
    study, series = generate_uid(), generate_uid()
    files = []
    for i in range(n):
        ds = sources[i % len(sources)].copy()
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.InstanceNumber = i + 1
        ds.PatientID = "BENCH"
        ds.StudyDate = "20240101"
        f = out / f"{i:02d}.dcm"
        ds.save_as(f, enforce_file_format=True)
        files.append(f)
    return study, files


def small_instances(out: Path, n: int = 200) -> list[Path]:
    from pydicom.uid import generate_uid

    from tests.orthanc_fixture import make_instance

    out.mkdir(parents=True, exist_ok=True)
    study = generate_uid()
    files = []
    for i in range(n):
        f = out / f"s{i:03d}.dcm"
        make_instance(study, number=i, seed=i, size=64).save_as(f, enforce_file_format=True)
        files.append(f)
    return files


def run(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {out.stderr[-500:]}")


def count_dcm(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def bench_retrieve(server: OrthancServer, study: str, nbytes: int, n: int, rounds: int,
                   tmp: Path) -> list[list[object]]:
    settings = NetSettings(ae_title=TEST_AE, listener_port=server.listener_port)
    base = Node("orthanc", ORTHANC_AE, "127.0.0.1", server.dicom_port,
                dicomweb_url=server.dicomweb)
    dcmtk_key = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"]

    def ours(method: str):
        def go(out: Path) -> None:
            import dataclasses

            node = dataclasses.replace(base, retrieve=method)
            client.retrieve(node, study, StudyCache(out), settings)
        return go

    def getscu(out: Path) -> None:
        out.mkdir(parents=True)
        run(["getscu", "-S", "-aet", TEST_AE, "-aec", ORTHANC_AE, "127.0.0.1",
             str(server.dicom_port), *dcmtk_key, "-od", str(out)])

    def movescu(out: Path) -> None:
        out.mkdir(parents=True)
        run(["movescu", "-S", "-aet", TEST_AE, "-aem", TEST_AE, "-aec", ORTHANC_AE,
             "--port", str(server.listener_port), "127.0.0.1", str(server.dicom_port),
             *dcmtk_key, "-od", str(out)])

    cases = {
        "cxr-viewer C-GET": ours("c-get"),
        "dcmtk getscu": getscu,
        "cxr-viewer C-MOVE": ours("c-move"),
        "dcmtk movescu": movescu,
        "cxr-viewer WADO-RS": ours("dicomweb"),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(rounds + 1):  # round 0 warms up
        for name, fn in cases.items():
            out = tmp / f"r{r}-{name.replace(' ', '_')}"
            t0 = time.perf_counter()
            fn(out)
            dt = time.perf_counter() - t0
            got = count_dcm(out)
            if got != n:
                raise RuntimeError(f"{name}: {got} of {n} instances")
            if r:
                times[name].append(dt)
            shutil.rmtree(out)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for name, t in med.items():
        ref = med["dcmtk movescu"] if "MOVE" in name else med["dcmtk getscu"]
        ratio = "1.00 (baseline)" if name.startswith("dcmtk") else f"{ref / t:.2f}"
        if "WADO" in name:
            ratio = f"{ref / t:.2f} (vs getscu)"
        rows.append([name, f"{t * 1000:.0f}", f"{nbytes / t / 1e6:.1f}", f"{n / t:.1f}", ratio])
    return rows


def bench_ingest(files: list[Path], rounds: int, tmp: Path, label: str) -> list[list[object]]:
    nbytes = sum(f.stat().st_size for f in files)
    ours = {"cxr-viewer listener": True, "cxr-viewer listener, no fsync": False}
    times: dict[str, list[float]] = {k: [] for k in ours} | {"dcmtk storescp": []}
    for r in range(rounds + 1):
        # ours: as shipped (each file fsynced before Success), and without the fsync, which
        # storescp does not do either
        for name, durable in ours.items():
            inbox = tmp / f"in-{label}-{r}"
            listener = StorageListener(inbox, "CXRVIEWER", 0, host="127.0.0.1",
                                       accept_from=["SENDER"],
                                       cache=StudyCache(inbox, durable=durable)).start()
            try:
                t0 = time.perf_counter()
                run(["storescu", "-aet", "SENDER", "-aec", "CXRVIEWER", "127.0.0.1",
                     str(listener.port), *map(str, files)])
                dt = time.perf_counter() - t0
            finally:
                listener.stop()
            assert count_dcm(inbox) == len(files), count_dcm(inbox)
            if r:
                times[name].append(dt)
            shutil.rmtree(inbox)
        # dcmtk
        out = tmp / f"scp-{label}-{r}"
        out.mkdir()
        port = free_port()
        proc = subprocess.Popen(["storescp", "-aet", "STORESCP", "-od", str(out), str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                import socket

                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            t0 = time.perf_counter()
            run(["storescu", "-aet", "SENDER", "-aec", "STORESCP", "127.0.0.1", str(port),
                 *map(str, files)])
            dt = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(10)
        assert count_dcm(out) == len(files)
        if r:
            times["dcmtk storescp"].append(dt)
        shutil.rmtree(out)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med["dcmtk storescp"]
    rows = []
    for name, t in med.items():
        rows.append([f"{name} ({label})", f"{t * 1000:.0f}", f"{nbytes / t / 1e6:.1f}",
                     f"{len(files) / t:.1f}",
                     "1.00 (baseline)" if name.startswith("dcmtk") else f"{ref / t:.2f}"])
    return rows


def bench_arrival_to_ai(files: list[Path], tmp: Path, pushes: int = 5) -> tuple[float, list[float]]:
    from cxr_viewer.net import dimse
    from cxr_viewer.net.analyse import ArrivalAnalyser

    done: dict[str, float] = {}
    event = threading.Event()

    def result(a: Arrival, res: dict) -> None:
        if "findings" not in res:
            raise RuntimeError(f"not analysed: {res}")
        done[a.sop_uid] = time.perf_counter()
        event.set()

    analyser = ArrivalAnalyser(tmp / "ai", on_result=result)
    t0 = time.perf_counter()
    analyser.start()
    analyser.ready.wait(600)
    load_s = time.perf_counter() - t0
    if analyser.load_error:
        raise RuntimeError(analyser.load_error)
    listener = StorageListener(tmp / "ai-inbox", "CXRVIEWER", 0, host="127.0.0.1",
                               accept_from=["SENDER"], on_arrival=analyser.submit).start()
    node = Node("me", "CXRVIEWER", "127.0.0.1", listener.port)
    lat = []
    try:
        from pydicom import dcmread
        from pydicom.uid import generate_uid

        for i in range(pushes + 1):  # the first push warms up the predict function
            ds = dcmread(files[i % len(files)])
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            f = tmp / f"push{i}.dcm"
            ds.save_as(f, enforce_file_format=True)
            event.clear()
            t0 = time.perf_counter()
            dimse.store_files(node, [f], "SENDER")
            event.wait(120)
            if i:
                lat.append(done[str(ds.SOPInstanceUID)] - t0)
    finally:
        listener.stop()
        analyser.stop()
    return load_s, lat


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", help="also write the markdown here")
    args = ap.parse_args()
    for tool in ("getscu", "movescu", "storescu", "storescp"):
        if shutil.which(tool) is None:
            sys.exit(f"bench_pacs: dcmtk {tool} is not installed (Debian package dcmtk)")
    lines = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        (tmp / "study").mkdir()
        study, files = build_study(tmp / "study")
        nbytes = sum(f.stat().st_size for f in files)
        server = OrthancServer(tmp / "orthanc").start()
        try:
            server.upload_files(files)
            rows = bench_retrieve(server, study, nbytes, len(files), args.rounds, tmp)
        finally:
            server.stop()
        head = (f"bench_pacs: {len(files)}-instance study from the corpus chest radiographs "
                f"({', '.join(CHEST)}), uncompressed, {nbytes / 1e6:.1f} MB; Orthanc "
                f"{_orthanc_version()} on 127.0.0.1; median of {args.rounds} interleaved rounds "
                f"after a warm-up\npython {platform.python_version()}, "
                f"{_cpus()} CPU(s), {platform.machine()}")
        lines += [head, "", markdown_table(
            ["retrieve 20 instances", "median ms", "MB/s", "instances/s", "ratio to dcmtk"], rows)]
        small = small_instances(tmp / "small")
        ingest = bench_ingest(files, args.rounds, tmp, "20 chest CR")
        ingest += bench_ingest(small, args.rounds, tmp, "200 x 8 KB")
        lines += ["", markdown_table(
            ["listener ingest (dcmtk storescu pushes)", "median ms", "MB/s", "instances/s",
             "ratio to storescp"], ingest)]
        load_s, lat = bench_arrival_to_ai(files, tmp)
        lines += ["", markdown_table(
            ["arrival to AI result (pushed chest CR, model loaded)", "median ms", "min ms",
             "max ms"],
            [[f"C-STORE sent -> findings JSON written ({len(lat)} pushes)",
              f"{statistics.median(lat) * 1000:.0f}", f"{min(lat) * 1000:.0f}",
              f"{max(lat) * 1000:.0f}"]]),
            f"\n(model load on the AI thread, once: {load_s:.1f} s)"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def _orthanc_version() -> str:
    out = subprocess.run(["Orthanc", "--version"], capture_output=True, text=True)
    return out.stdout.split("\n")[0].replace("Orthanc ", "") if out.returncode == 0 else "?"


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    raise SystemExit(main())
