"""A seeded file fuzzer for the loaders, the renderer, ``info``/``render`` and the GUI open path.

Each case is a mutated copy of a small file of the shared DICOM corpus (bit flips, truncations,
huge / zero / negative dimensions and lengths, wrong VRs, a wrong transfer syntax UID, deep
sequence nesting, frame-count bombs) or a generated raster bomb (PNG / TIFF / JPEG headers that
claim gigapixels, a PNG that inflates to a huge buffer, a TIFF whose IFD chain loops). Case ``n``
of seed ``s`` is always the same file.

Cases run in a worker process (``python -m tests.fuzzer --worker``) under an address-space limit;
the parent feeds it one case at a time. A case may use :data:`CASE_CPU_LIMIT_S` seconds of CPU
(CPU, not wall time, so that a loaded machine does not fail it); a worker that does not answer
after :data:`HANG_CPU_S` CPU seconds (or :data:`HANG_TIMEOUT_S` wall seconds) is killed and the
case counts as a hang. In
the worker, each case goes through

* ``load_image`` (then ``render_display`` of the first and last frame with overlays, the
  ``DisplayRenderer`` at a screen-resolution step and ``info``'s ``describe``),
* ``cxr-viewer info`` and ``cxr-viewer render`` (in-process ``cli.main``: exit 0, or exit 2 with
  exactly one ``error:`` line),
* the GUI's loading worker functions (``probe_files``, ``make_thumbnail``).

A case passes when it ends as an image or a clean refusal (:class:`ImageRefused`); it fails on a
traceback (any other exception), a CLI exit other than 0/2 or a noisy refusal, a crash of the
worker (signal), a hang, more than :data:`CASE_CPU_LIMIT_S` CPU seconds or a peak RSS above
:data:`MAX_RSS_MB`.

``make fuzz`` runs a long campaign::

    python -m tests.fuzzer --cases 3000 --seed 1 [--corpus DIR] [--keep DIR]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import random
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "data" / "dicom-corpus"

#: CPU seconds one case may take in the worker (load + render + info + CLI + GUI worker functions).
CASE_CPU_LIMIT_S = 10.0
#: A silent worker is a hang (killed, the case fails) once it has spent this many CPU seconds on
#: the case, or this many wall seconds whatever the load (a niced run on a busy machine is slow).
HANG_CPU_S = 30.0
HANG_TIMEOUT_S = 600.0
#: Peak resident memory of the worker allowed at any case (MB).
MAX_RSS_MB = 2500
#: Address-space limit of the worker (bytes): past it allocations fail instead of swapping.
ADDRESS_SPACE_LIMIT = 8 * 1024**3
#: Source files larger than this are not mutated (keeps cases fast on a loaded machine).
MAX_SOURCE_BYTES = 600_000

MUTATIONS = (
    "bitflip",
    "bitflip_tail",
    "truncate",
    "huge_dims",
    "zero_or_negative_dims",
    "frame_bomb",
    "bad_pixel_attrs",
    "wrong_ts",
    "wrong_vr",
    "huge_length",
    "deep_nesting",
    "png_bomb",
    "tiff_bomb",
    "jpeg_bomb",
)


# --------------------------------------------------------------------------------------------
# mutations
# --------------------------------------------------------------------------------------------
def corpus_sources(corpus: Path) -> list[Path]:
    files = sorted((corpus / "corpus").glob("*.dcm"))
    return [f for f in files if f.stat().st_size <= MAX_SOURCE_BYTES]


def _bitflip(data: bytes, rng: random.Random, start: int = 0) -> bytes:
    b = bytearray(data)
    start = min(start, len(b) - 1)
    for _ in range(rng.choice((1, 2, 4, 8, 16, 64))):
        k = rng.randrange(start, len(b))
        b[k] ^= 1 << rng.randrange(8)
    return bytes(b)


def _pixel_offset(data: bytes) -> int:
    i = data.rfind(b"\xe0\x7f\x10\x00")
    return i if i > 0 else len(data) // 2


def _with_header(src: Path, rng: random.Random, edit) -> bytes:
    """Read ``src`` with pydicom, let ``edit(ds, rng)`` change it, write it back (raw bytes)."""
    import warnings

    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(src, force=True)
        edit(ds, rng)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _set(ds, keyword: str, value) -> None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    vr = dictionary_VR(tag)
    if keyword in ds:
        del ds[keyword]
    ds.add_new(tag, vr, value)


def _huge_dims(ds, rng: random.Random) -> None:
    _set(ds, "Rows", rng.choice((65535, 46341, 30000, 1)))
    _set(ds, "Columns", rng.choice((65535, 46341, 30000, 1)))


def _zero_dims(ds, rng: random.Random) -> None:
    _set(ds, rng.choice(("Rows", "Columns")), 0)
    if rng.random() < 0.5:
        _set(ds, "NumberOfFrames", rng.choice(("0", "-1", "-2147483648")))


def _frame_bomb(ds, rng: random.Random) -> None:
    _set(ds, "NumberOfFrames", rng.choice(("2147483647", "100000", "65536", "99999999999")))
    if rng.random() < 0.5:
        _set(ds, "Rows", 1)
        _set(ds, "Columns", 1)


def _bad_pixel_attrs(ds, rng: random.Random) -> None:
    choice = rng.randrange(6)
    if choice == 0:
        _set(ds, "BitsAllocated", rng.choice((0, 7, 12, 24, 64, 65535)))
    elif choice == 1:
        _set(ds, "BitsStored", rng.choice((0, 17, 33, 65535)))
    elif choice == 2:
        _set(ds, "HighBit", rng.choice((0, 31, 65535)))
    elif choice == 3:
        _set(ds, "SamplesPerPixel", rng.choice((0, 3, 4, 65535)))
    elif choice == 4:
        _set(ds, "PixelRepresentation", rng.choice((1, 2, 65535)))
    else:
        _set(ds, "PhotometricInterpretation", rng.choice(("MONOCHROME3", "", "RGB", "PALETTE COLOR")))


_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.55",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.5",
    "1.2.3.4.5.6.7",
    "not-a-uid",
)


def _wrong_ts(data: bytes, rng: random.Random) -> bytes:
    """Replace the Transfer Syntax UID value in the File Meta (same length, padded)."""
    m = re.search(rb"\x02\x00\x10\x00UI(..)", data[:2048], re.S)
    if m is None:
        return _bitflip(data, rng)
    length = struct.unpack("<H", m.group(1))[0]
    start = m.end()
    new = rng.choice(_TRANSFER_SYNTAXES).encode()
    new = new + b"\0" * (len(new) % 2)
    return data[:start - 2] + struct.pack("<H", len(new)) + new + data[start + length:]


_VRS = (b"US", b"UL", b"SS", b"SL", b"CS", b"DS", b"IS", b"LO", b"SH", b"PN", b"DA", b"TM",
        b"UI", b"OB", b"OW", b"SQ", b"UN", b"FD", b"FL", b"AT", b"UT", b"OF")
_VR_RE = re.compile(rb"[\x00-\xff]{4}(" + b"|".join(_VRS) + rb")")


def _wrong_vr(data: bytes, rng: random.Random) -> bytes:
    limit = _pixel_offset(data) + 12
    hits = [m.start(1) for m in _VR_RE.finditer(data, 132, limit)]
    if not hits:
        return _bitflip(data, rng)
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 5))):
        k = rng.choice(hits)
        b[k : k + 2] = rng.choice(_VRS)
    return bytes(b)


def _huge_length(data: bytes, rng: random.Random) -> bytes:
    limit = _pixel_offset(data) + 12
    hits = [m.start(1) for m in _VR_RE.finditer(data, 132, limit)]
    if not hits:
        return _bitflip(data, rng)
    b = bytearray(data)
    k = rng.choice(hits)
    vr = bytes(b[k : k + 2])
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"OF"):
        value = rng.choice((0xFFFFFFF0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF, 3))
        b[k + 4 : k + 8] = struct.pack("<I", value)
    else:
        b[k + 2 : k + 4] = struct.pack("<H", rng.choice((0xFFFF, 0xFFFE, 0x8001, 1)))
    return bytes(b)


def _deep_nesting(data: bytes, rng: random.Random) -> bytes:
    """Insert an undefined-length sequence nested thousands of items deep after the File Meta."""
    m = re.search(rb"\x02\x00\x10\x00UI(..)", data[:2048], re.S)
    if m is None or not data[128:132] == b"DICM":
        return _truncate(data, rng)
    # End of group 0002: first tag after the File Meta whose group is not 2.
    pos = 132
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        vr = data[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
            pos += 12 + struct.unpack("<I", data[pos + 8 : pos + 12])[0]
        else:
            pos += 8 + struct.unpack("<H", data[pos + 6 : pos + 8])[0]
    depth = rng.choice((200, 1000, 5000, 20000))
    explicit = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    item_end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    seq_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    close = rng.random() < 0.7
    blob = (explicit + item) * depth + ((item_end + seq_end) * depth if close else b"")
    return data[:pos] + blob + data[pos:]


def _truncate(data: bytes, rng: random.Random) -> bytes:
    cut = rng.choice((rng.randrange(1, 140), rng.randrange(1, len(data)), len(data) - 1,
                      _pixel_offset(data) + rng.randrange(0, 16)))
    return data[: max(1, min(cut, len(data) - 1))]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


@functools.lru_cache(maxsize=4)
def _zero_idat(width_bytes: int, height: int) -> bytes:
    row = b"\0" * (width_bytes + 1)
    comp = zlib.compressobj(9)
    return b"".join(comp.compress(row) for _ in range(height)) + comp.flush()


def png_bomb(rng: random.Random) -> bytes:
    """A PNG claiming huge dimensions, or one whose IDAT inflates to hundreds of MB."""
    kind = rng.randrange(3)
    if kind == 0:  # header claims 2^31-1 square, a few bytes of data
        w = h = rng.choice((0x7FFFFFFF, 100000, 65535))
        depth, idat = 8, zlib.compress(b"\0" * 1024)
    elif kind == 1:  # a real decompression bomb: 24000 x 24000 8-bit zeros (~576 MB)
        w = h = 24000
        depth = 8
        idat = _zero_idat(w, h)
    else:  # 16-bit, just under / over the 400 MB budget
        w, h = rng.choice(((14000, 14000), (15000, 15000)))
        depth = 16
        idat = _zero_idat(2 * w, h)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def tiff_bomb(rng: random.Random) -> bytes:
    """A little-endian TIFF claiming huge dimensions, or with an IFD chain that loops."""
    w = h = rng.choice((100000, 65535, 0x7FFFFFFF, 64))
    loop = w == 64 or rng.random() < 0.3
    entries = [
        (256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, 16),
    ]
    ifd_offset = 8 + 16
    ifd = struct.pack("<H", len(entries))
    for tag, typ, count, value in entries:
        ifd += struct.pack("<HHII", tag, typ, count, value)
    ifd += struct.pack("<I", ifd_offset if loop else 0)  # next IFD: itself (loop) or none
    return b"II*\x00" + struct.pack("<I", ifd_offset) + b"\0" * 16 + ifd


def jpeg_bomb(rng: random.Random) -> bytes:
    """A baseline JPEG whose SOF claims 65500 x 65500 (entropy data: a few bytes)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    i = data.find(b"\xff\xc0")
    size = rng.choice((65500, 65535, 30000))
    data[i + 5 : i + 9] = struct.pack(">HH", size, size)
    return bytes(data)


def make_case(index: int, seed: int, sources: list[Path]) -> tuple[str, str, bytes]:
    """(mutation, source name, file bytes) of case ``index``; deterministic per (seed, index)."""
    rng = random.Random(seed * 1_000_003 + index)
    mutation = MUTATIONS[index % len(MUTATIONS)] if index < len(MUTATIONS) else rng.choice(
        MUTATIONS
    )
    if mutation == "png_bomb":
        return mutation, "generated", png_bomb(rng)
    if mutation == "tiff_bomb":
        return mutation, "generated", tiff_bomb(rng)
    if mutation == "jpeg_bomb":
        return mutation, "generated", jpeg_bomb(rng)
    src = rng.choice(sources)
    data = src.read_bytes()
    try:
        if mutation == "bitflip":
            out = _bitflip(data, rng)
        elif mutation == "bitflip_tail":
            out = _bitflip(data, rng, start=_pixel_offset(data))
        elif mutation == "truncate":
            out = _truncate(data, rng)
        elif mutation == "wrong_ts":
            out = _wrong_ts(data, rng)
        elif mutation == "wrong_vr":
            out = _wrong_vr(data, rng)
        elif mutation == "huge_length":
            out = _huge_length(data, rng)
        elif mutation == "deep_nesting":
            out = _deep_nesting(data, rng)
        else:
            edit = {
                "huge_dims": _huge_dims,
                "zero_or_negative_dims": _zero_dims,
                "frame_bomb": _frame_bomb,
                "bad_pixel_attrs": _bad_pixel_attrs,
            }[mutation]
            out = _with_header(src, rng, edit)
    except Exception:  # noqa: BLE001 - a source pydicom cannot rewrite: flip bits instead
        out = _bitflip(data, rng)
    return mutation, src.name, out


# --------------------------------------------------------------------------------------------
# worker (one process, many cases)
# --------------------------------------------------------------------------------------------
def _rss_mb() -> tuple[float, float]:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        with open("/proc/self/statm") as fh:
            now = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        now = peak
    return now, peak


def _cpu_seconds() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _run_cli(args: list[str]) -> tuple[int, str, str]:
    import contextlib

    from cxr_viewer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(args)
        except SystemExit as exc:  # argparse
            rc = int(exc.code or 0)
    return rc, out.getvalue(), err.getvalue()


def run_case(path: str, out_dir: str) -> dict:
    """All operations on one file; the outcome and, on failure, what went wrong."""
    import numpy as np

    from cxr_viewer.commands.info import describe
    from cxr_viewer.errors import ImageRefused
    from cxr_viewer.imaging.presets import default_preset
    from cxr_viewer.imaging.render import DisplayRenderer, render_display
    from cxr_viewer.io.loader import load_image
    from cxr_viewer.ui.loading import ImageCache, make_thumbnail, probe_files

    result: dict = {"outcome": "image"}
    try:
        image = load_image(path)
    except ImageRefused as exc:
        result["outcome"] = "refused"
        result["reason"] = exc.cause[:200]
        image = None
    except BaseException:  # noqa: BLE001 - the point of the fuzzer
        return {"outcome": "traceback", "where": "load_image", "detail": traceback.format_exc()}
    try:
        if image is not None:
            voi = default_preset(image).resolve(image)
            for frame in {0, image.num_frames - 1}:
                out = render_display(image, voi, frame=frame, overlays=True)
                assert out.dtype == np.uint8 and out.shape == image.shape
            DisplayRenderer(image).render(voi, overlays=True, step=4)
            describe(image)
            make_thumbnail(image)
    except BaseException:  # noqa: BLE001
        return {"outcome": "traceback", "where": "render/info", "detail": traceback.format_exc()}
    png = os.path.join(out_dir, "render.png")
    for args in (["info", path], ["render", path, png]):
        try:
            rc, _stdout, stderr = _run_cli(args)
        except BaseException:  # noqa: BLE001
            return {"outcome": "traceback", "where": f"cli {args[0]}",
                    "detail": traceback.format_exc()}
        # info loads every frame, as load_image did; render decodes only frame 1, which may
        # succeed where all frames are refused (e.g. Number of Frames says 100000).
        expected = (0,) if image is not None else (2,) if args[0] == "info" else (0, 2)
        lines = stderr.strip().splitlines()
        clean = rc in expected and (rc == 0 or (len(lines) == 1 and lines[0].startswith("error:")))
        if not clean or "Traceback" in stderr:
            return {"outcome": "bad-cli", "where": f"cli {args[0]}",
                    "detail": f"exit {rc} (expected {expected}): {stderr[-2000:]}"}
        if os.path.exists(png):
            os.remove(png)
    try:
        entries, problems = probe_files([path], ImageCache())
    except BaseException:  # noqa: BLE001
        return {"outcome": "traceback", "where": "gui probe_files", "detail": traceback.format_exc()}
    if (len(entries) == 1) != (image is not None) or len(entries) + len(problems) != 1:
        return {"outcome": "bad-gui", "where": "gui probe_files",
                "detail": f"{len(entries)} entries, problems {problems}"}
    return result


def worker_main() -> int:
    """Read case paths (JSON lines) on stdin, answer one JSON line per case on stdout."""
    import resource

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    out_dir = tempfile.mkdtemp(prefix="cxr-fuzz-out-")
    # Import once, outside any case's time.
    from cxr_viewer.io.loader import load_image  # noqa: F401
    from cxr_viewer.ui.loading import probe_files  # noqa: F401

    real_stdout.write(json.dumps({"ready": True}) + "\n")
    real_stdout.flush()
    for line in sys.stdin:
        case = json.loads(line)
        t0 = time.perf_counter()
        cpu0 = _cpu_seconds()
        result = run_case(case["path"], out_dir)
        now, peak = _rss_mb()
        result.update(id=case["id"], seconds=round(time.perf_counter() - t0, 3),
                      cpu_seconds=round(_cpu_seconds() - cpu0, 3),
                      rss_mb=round(now), peak_rss_mb=round(peak))
        real_stdout.write(json.dumps(result) + "\n")
        real_stdout.flush()
    return 0


# --------------------------------------------------------------------------------------------
# parent
# --------------------------------------------------------------------------------------------
@dataclass
class Summary:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_mutation: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    max_seconds: float = 0.0
    max_cpu_seconds: float = 0.0
    max_peak_rss_mb: float = 0.0
    worker_restarts: int = 0

    def line(self) -> str:
        o = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (f"{self.cases} cases: {o}; failures {len(self.failures)}; slowest case "
                f"{self.max_seconds:.2f} s ({self.max_cpu_seconds:.2f} s CPU); worker peak RSS {self.max_peak_rss_mb:.0f} MB; "
                f"worker restarts {self.worker_restarts}")


class _Worker:
    def __init__(self, log) -> None:
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(REPO) + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzzer", "--worker"], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
        )
        first = self._read(120.0)
        if not first or not json.loads(first).get("ready"):
            raise RuntimeError("fuzz worker did not start")

    def _read(self, timeout: float) -> str | None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        return self.proc.stdout.readline() or None

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker so far (from /proc)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def run(self, case_id: int, path: str, timeout: float) -> dict | None:
        """The case's result, or None when the worker died or hung (it is then killed)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": case_id, "path": path}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        cpu0, t0 = self.cpu_seconds(), time.monotonic()
        while True:
            line = self._read(1.0)
            if line is not None:
                return json.loads(line)
            if self.proc.poll() is not None:
                return None
            if self.cpu_seconds() - cpu0 > HANG_CPU_S or time.monotonic() - t0 > timeout:
                return None

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()
        return self.proc.returncode


def run_campaign(cases: int, seed: int, corpus: Path = DEFAULT_CORPUS, start: int = 0,
                 keep: Path | None = None, progress=None) -> Summary:
    """Run cases ``start .. start + cases - 1`` of ``seed``; failures keep their file bytes."""
    sources = corpus_sources(corpus)
    if not sources:
        raise FileNotFoundError(f"no corpus files under {corpus}")
    summary = Summary()
    with tempfile.TemporaryDirectory(prefix="cxr-fuzz-") as tmp, \
            open(Path(tmp) / "worker.log", "w") as log:
        worker = _Worker(log)
        try:
            for index in range(start, start + cases):
                mutation, source, data = make_case(index, seed, sources)
                path = Path(tmp) / f"case{index}{'.dcm' if source != 'generated' else ''}"
                path.write_bytes(data)
                result = worker.run(index, str(path), HANG_TIMEOUT_S)
                if result is None:
                    rc = worker.stop()
                    outcome = "hang" if rc in (-9, None) else f"crash (exit {rc})"
                    result = {"outcome": outcome, "detail": "worker died or timed out"}
                    summary.worker_restarts += 1
                    worker = _Worker(log)
                summary.cases += 1
                summary.by_mutation[mutation] += 1
                outcome = result["outcome"]
                summary.max_seconds = max(summary.max_seconds, result.get("seconds", 0.0))
                summary.max_cpu_seconds = max(summary.max_cpu_seconds,
                                              result.get("cpu_seconds", 0.0))
                summary.max_peak_rss_mb = max(summary.max_peak_rss_mb,
                                              result.get("peak_rss_mb", 0.0))
                if outcome in ("image", "refused") and result.get("peak_rss_mb", 0) > MAX_RSS_MB:
                    outcome = "memory"
                if outcome in ("image", "refused") and \
                        result.get("cpu_seconds", 0) > CASE_CPU_LIMIT_S:
                    outcome = "slow"
                summary.outcomes[outcome] += 1
                if outcome not in ("image", "refused"):
                    failure = dict(result, case=index, seed=seed, mutation=mutation,
                                   source=source, outcome=outcome)
                    summary.failures.append(failure)
                    if keep is not None:
                        keep.mkdir(parents=True, exist_ok=True)
                        (keep / f"seed{seed}-case{index}-{mutation}.bin").write_bytes(data)
                path.unlink()
                if progress is not None:
                    progress(index, mutation, source, outcome, result)
        finally:
            worker.stop()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzzer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--keep", type=Path, help="folder for the files of failing cases")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main()
    t0 = time.perf_counter()

    def progress(index, mutation, source, outcome, result) -> None:
        if outcome not in ("image", "refused"):
            print(f"FAIL case {index} ({mutation} of {source}): {outcome} "
                  f"{result.get('where', '')}\n{result.get('detail', '')}", flush=True)
        elif result.get("cpu_seconds", 0) > CASE_CPU_LIMIT_S / 4:
            print(f"slow case {index} ({mutation} of {source}): {outcome} in "
                  f"{result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU), peak RSS {result.get('peak_rss_mb')} MB "
                  f"{result.get('reason', '')[:100]}", flush=True)
        elif (index + 1) % 100 == 0:
            print(f"... {index + 1 - args.start} cases", flush=True)

    summary = run_campaign(args.cases, args.seed, args.corpus, args.start, args.keep, progress)
    print(f"seed {args.seed}: {summary.line()} in {time.perf_counter() - t0:.0f} s")
    print("by mutation: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.by_mutation.items())))
    return 1 if summary.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
