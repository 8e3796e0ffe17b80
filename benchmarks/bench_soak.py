"""Memory soak: open the shared NIH radiographs one after another in the viewer, analysis on.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_soak.py [--limit N] [--warmup 50]

The real main window (offscreen) with the bundled model loaded: each image is shown through the
viewer's own open path (``show_path``: loading worker, display, AI analysis), and the soak waits
until that image's prediction and heat maps are on screen (or the analysis says why it was not
run) before the next. Every ``--every`` images it records the process's resident memory
(``/proc/self/statm``), its native threads (``/proc/self/status``), the Python threads, the open
file descriptors and the files left in a private ``TMPDIR``.

Pass criteria (issue 15): RSS growth after the warm-up <= 100 MB; threads, descriptors and
temporary files do not grow (a few files that libraries create once at start, e.g. TensorFlow's
or Qt's, are listed).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parent.parent
for p in (str(REPO), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

NIH = REPO.parent / "shared" / "data" / "nih-cxr" / "images"
MAX_GROWTH_MB = 100.0


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def native_threads() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=NIH)
    ap.add_argument("--limit", type=int, default=0, help="first N images only (0: all)")
    ap.add_argument("--warmup", type=int, default=50, help="images before the RSS baseline")
    ap.add_argument("--every", type=int, default=25, help="sample every N images")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds per image at most")
    args = ap.parse_args()

    files = sorted(str(p) for p in args.images.glob("*.png"))
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"no images under {args.images}")
        return 2
    # Private temp and settings folders: leaked temporary files are counted there.
    scratch = Path(tempfile.mkdtemp(prefix="cxr-soak-"))
    tmpdir = scratch / "tmp"
    tmpdir.mkdir()
    os.environ["TMPDIR"] = str(tmpdir)
    tempfile.tempdir = str(tmpdir)
    os.environ.setdefault("CXR_VIEWER_SETTINGS_DIR", str(scratch / "settings"))

    from PySide6.QtWidgets import QApplication

    from cxr_viewer.ui.app import apply_theme, make_app
    from cxr_viewer.ui.main_window import MainWindow

    app = make_app([sys.argv[0]])
    apply_theme(app)
    win = MainWindow()
    win.resize(1600, 1000)
    win.show()

    def pump_until(pred, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            QApplication.processEvents()
            if pred():
                return True
            time.sleep(0.005)
        return False

    t_model = time.perf_counter()
    win.load_default_model()
    if not pump_until(lambda: win.card is not None, 600):
        print("the model did not load")
        return 2
    print(f"# bench_soak: {len(files)} NIH images, analysis on; model {win.card.name} "
          f"{win.card.version} loaded in {time.perf_counter() - t_model:.1f} s; "
          f"{os.cpu_count()} CPU(s)")

    def analysed(path: str) -> bool:
        img = win.current_image
        if img is None or img.path != path or win.view.image is not img:
            return False
        status = win.analysis_label.text()
        if status.startswith(("Not analysed", "AI failed")):
            return True
        return (win.prediction is not None and win.prediction.image_id == img.image_id
                and win.cams is not None and win.cams.image_id == img.image_id)

    win.open_paths(files)  # as a user selecting the files: the browser lists them all
    samples: list[tuple[int, float, int, int, int, int, float]] = []
    not_analysed = timeouts = 0
    t0 = time.perf_counter()
    for i, path in enumerate(files, start=1):
        win.show_path(path)
        if not pump_until(lambda p=path: analysed(p), args.timeout):
            timeouts += 1
            print(f"timeout on {path} ({win.analysis_label.text()})", flush=True)
        elif win.prediction is None or win.prediction.image_id != win.current_image.image_id:
            not_analysed += 1
        if i % args.every == 0 or i == len(files) or i == args.warmup:
            gc.collect()
            QApplication.processEvents()
            sample = (i, rss_mb(), native_threads(), threading.active_count(),
                      len(os.listdir("/proc/self/fd")), count_files(tmpdir),
                      time.perf_counter() - t0)
            samples.append(sample)
            print(f"{i:5d} images  RSS {sample[1]:7.1f} MB  threads {sample[2]:3d} "
                  f"(python {sample[3]})  fds {sample[4]:3d}  tmp files {sample[5]}  "
                  f"{sample[6]:6.0f} s", flush=True)
    elapsed = time.perf_counter() - t0
    win.shutdown()
    win.close()

    base = next((s for s in samples if s[0] >= args.warmup), samples[0])
    last = samples[-1]
    after = [s for s in samples if s[0] >= base[0]]
    growth = last[1] - base[1]
    peak_growth = max(s[1] for s in after) - base[1]
    threads_ok = max(s[2] for s in after) <= base[2] + 2
    fds_ok = max(s[4] for s in after) <= base[4] + 2
    tmp_ok = last[5] <= base[5]
    print()
    print("| measure | value |")
    print("|---|---|")
    print(f"| images opened (analysis on) | {len(files)} ({not_analysed} not analysed by the "
          f"model's own rules, {timeouts} timeouts) |")
    print(f"| time | {elapsed:.0f} s ({elapsed / len(files):.2f} s per image) |")
    print(f"| RSS after warm-up ({base[0]} images) | {base[1]:.0f} MB |")
    print(f"| RSS at the end | {last[1]:.0f} MB (growth {growth:+.0f} MB, "
          f"peak growth {peak_growth:+.0f} MB; limit {MAX_GROWTH_MB:.0f} MB) |")
    print(f"| native threads warm-up -> end (max) | {base[2]} -> {last[2]} "
          f"({max(s[2] for s in after)}) |")
    print(f"| Python threads warm-up -> end | {base[3]} -> {last[3]} |")
    print(f"| open descriptors warm-up -> end (max) | {base[4]} -> {last[4]} "
          f"({max(s[4] for s in after)}) |")
    left = sorted(str(f.relative_to(tmpdir)) for f in tmpdir.rglob("*") if f.is_file())
    print(f"| files in TMPDIR warm-up -> end | {base[5]} -> {last[5]} "
          f"({', '.join(left[:5])}{' ...' if len(left) > 5 else ''}) |")
    ok = growth <= MAX_GROWTH_MB and threads_ok and fds_ok and tmp_ok and timeouts == 0
    print(f"\nsoak: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
