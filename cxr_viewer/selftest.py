"""``cxr-viewer --self-test``: prove that an installation works end to end, in one command.

The self-test runs the path a reader's first click runs, on data it generates itself (no patient
image, no network): load the bundled model, generate and open the synthetic sample study, predict,
compute a heat map, compose and save an annotated export, and open the sample in the viewer's
main window off screen.
It prints one summary line and returns 0, or prints ``self-test FAILED: <stage>: <reason>`` and
returns 1. The same code runs from the source tree and from the PyInstaller bundle, where it is the
installer's smoke test (``installer/smoke_test.sh``).

Every stage checks what it got instead of trusting it (shapes, ranges, ids, the written file), so
a broken build fails loudly here rather than showing a wrong picture to a reader later.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

from cxr_viewer import __version__
from cxr_viewer.errors import CxrError

#: Environment variable naming a folder where the self-test writes (and keeps) its sample study
#: and export; without it, everything goes to a temporary folder that is removed afterwards.
OUT_DIR_ENV = "CXR_VIEWER_SELFTEST_DIR"
EXPORT_NAME = "cxr-viewer-self-test.png"
#: The stages, in the order they run; a failure names one of them.
STAGES = ("model", "sample", "load", "predict", "cams", "export", "gui")

T = TypeVar("T")


class SelfTestFailure(Exception):
    """One stage of the self-test failed.

    Parameters
    ----------
    stage
        One of ``STAGES``.
    reason
        What went wrong, in one line.
    """

    def __init__(self, stage: str, reason: str) -> None:
        self.stage = stage
        self.reason = reason
        super().__init__(f"{stage}: {reason}")


@dataclass
class SelfTestReport:
    """What a successful self-test measured; ``summary_line()`` is what it prints."""

    model_name: str = ""
    model_version: str = ""
    n_images: int = 0
    top_finding: str = ""
    top_probability: float = math.nan
    cam_method: str = ""
    cam_shape: tuple[int, int] = (0, 0)
    export_path: Path | None = None
    export_bytes: int = 0
    export_shape: tuple[int, int] = (0, 0)  # rows, cols
    export_kept: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def summary_line(self) -> str:
        """One line: model, images, top finding, heat map, export, timings."""
        kept = "" if self.export_kept else ", removed"
        stages = " ".join(f"{k} {v:.1f}" for k, v in self.stage_seconds.items())
        return (
            f"self-test OK: cxr-viewer {__version__} | model {self.model_name} "
            f"{self.model_version} | {self.n_images} images | top finding "
            f"{self.top_finding} p={self.top_probability:.3f} | {self.cam_method} map "
            f"{self.cam_shape[0]}x{self.cam_shape[1]} | export {self.export_path} "
            f"({self.export_shape[1]}x{self.export_shape[0]}, {self.export_bytes} B{kept}) | "
            f"{self.seconds:.1f} s ({stages})"
        )


def _check(condition: bool, stage: str, reason: str) -> None:
    if not condition:
        raise SelfTestFailure(stage, reason)


def _timed(stage: str, report: SelfTestReport, fn: Callable[[], T]) -> T:
    """Run one stage, record its time, and turn any exception into a failure naming the stage."""
    start = time.perf_counter()
    try:
        return fn()
    except SelfTestFailure:
        raise
    except CxrError as exc:  # already names the file/model and the cause
        raise SelfTestFailure(stage, str(exc)) from exc
    except Exception as exc:
        raise SelfTestFailure(stage, f"{type(exc).__name__}: {exc}") from exc
    finally:
        report.stage_seconds[stage] = time.perf_counter() - start


# ---- the stages ------------------------------------------------------------------------------


def _load_model(model_dir: Path) -> Any:
    _check(
        (model_dir / "model.json").is_file(),
        "model",
        f"no model bundle at {model_dir} (model.json is missing)",
    )
    from cxr_viewer.inference.bundle import load_bundle

    return load_bundle(model_dir)


def _generate_sample(sample_dir: Path) -> list[Path]:
    from cxr_viewer.io.sample import generate_sample_study

    paths = [Path(p) for p in generate_sample_study(sample_dir)]
    _check(bool(paths), "sample", f"generate_sample_study({sample_dir}) wrote no file")
    missing = [str(p) for p in paths if not p.is_file()]
    _check(not missing, "sample", f"generated files are missing: {missing}")
    return paths


def _open_sample(sample_dir: Path, paths: list[Path]) -> list[Any]:
    """Open the study the way the viewer does: scan the folder, then load every image."""
    from cxr_viewer.io.loader import load_image
    from cxr_viewer.io.scan import scan_folder

    scan = scan_folder(sample_dir)
    _check(not scan.skipped, "load", f"the scan of {sample_dir} skipped {scan.skipped}")
    # the current study and its prior (sample.PRIOR_FILE, for the compare-with-prior layout)
    _check(len(scan.studies) == 2, "load",
           f"expected 2 studies (current and prior), the scan found {len(scan.studies)}")
    _check(
        len(scan.instances) == len(paths) + 1,
        "load",
        f"the scan found {len(scan.instances)} images, {len(paths) + 1} were generated",
    )
    images = [load_image(p) for p in paths]
    for path, image in zip(paths, images, strict=True):
        rows, cols = image.shape
        _check(rows > 0 and cols > 0, "load", f"{path}: empty image {image.shape}")
    return images


def _predict_all(bundle: Any, images: list[Any]) -> list[Any]:
    from cxr_viewer.inference.findings import VINDR_FINDINGS

    predictions = []
    for image in images:
        pred = bundle.predict(image)
        where = Path(image.path).name
        _check(pred.image_id == image.image_id, "predict", f"{where}: prediction for another image")
        _check(
            tuple(s.finding for s in pred.scores) == VINDR_FINDINGS,
            "predict",
            f"{where}: scores do not list the {len(VINDR_FINDINGS)} VinDr-CXR findings in order",
        )
        scored = [s.probability for s in pred.scores if s.probability is not None]
        _check(bool(scored), "predict", f"{where}: the model scored no finding")
        bad = [p for p in scored if not (math.isfinite(p) and 0.0 <= p <= 1.0)]
        _check(not bad, "predict", f"{where}: probabilities outside [0, 1]: {bad}")
        predictions.append(pred)
    return predictions


def _cams_for(bundle: Any, image: Any, finding: str) -> Any:
    import numpy as np

    cams = bundle.cams(image, findings=[finding])
    where = Path(image.path).name
    _check(cams.image_id == image.image_id, "cams", f"{where}: heat map for another image")
    _check(finding in cams.maps, "cams", f"{where}: no heat map for {finding!r}")
    cam = np.asarray(cams.maps[finding])
    _check(
        cam.shape == image.shape,
        "cams",
        f"{where}: heat map is {cam.shape}, the image is {image.shape}",
    )
    _check(cam.dtype == np.float32, "cams", f"{where}: heat map dtype is {cam.dtype}, not float32")
    _check(bool(np.isfinite(cam).all()), "cams", f"{where}: heat map has NaN/inf values")
    lo, hi = float(cam.min()), float(cam.max())
    _check(0.0 <= lo and hi <= 1.0, "cams", f"{where}: heat map spans [{lo}, {hi}], not [0, 1]")
    return cams


def _export(
    bundle: Any, image: Any, prediction: Any, cams: Any, finding: str, out_dir: Path
) -> tuple[Path, tuple[int, int]]:
    import numpy as np
    from PIL import Image

    from cxr_viewer.export.annotated import ExportRequest, compose_annotated, save_image
    from cxr_viewer.imaging.presets import default_preset

    preset = default_preset(image)
    request = ExportRequest(
        image=image,
        voi=preset.resolve(image),
        prediction=prediction,
        cams=cams,
        finding=finding,
        card=bundle.card,
        window_label=preset.label,
    )
    rgb = np.asarray(compose_annotated(request))
    _check(
        rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8,
        "export",
        f"compose_annotated returned {rgb.dtype} {rgb.shape}, not (H, W, 3) uint8",
    )
    _check(int(rgb.max()) > int(rgb.min()), "export", "the annotated image is uniform")
    path = out_dir / EXPORT_NAME
    save_image(rgb, path, request)
    _check(path.is_file() and path.stat().st_size > 0, "export", f"{path} was not written")
    with Image.open(path) as written:
        written.load()
        size = written.size
    _check(
        size == (rgb.shape[1], rgb.shape[0]),
        "export",
        f"{path} is {size[0]}x{size[1]}, the composed image {rgb.shape[1]}x{rgb.shape[0]}",
    )
    # De-identified by default: the patient's name must not travel in the file's metadata.
    name = str(image.tags.get("PatientName", "") or "").strip()
    if len(name) >= 4:
        _check(
            name.encode("utf-8") not in path.read_bytes(),
            "export",
            f"{path} contains the patient name although patient details were not requested",
        )
    return path, (int(rgb.shape[0]), int(rgb.shape[1]))


def _open_in_viewer(paths: list[Path], settings_file: Path, timeout_s: float = 120.0) -> None:
    """Open the sample in the real main window, off screen, and wait until an image is shown.

    This proves that Qt, its platform plug-in, the theme resources and the viewer's own modules
    load in this installation: a bundle missing one fails here, not in front of a reader.
    """
    # Off screen unless the caller chose a platform: a platform plug-in that cannot load aborts
    # the process from inside Qt, before this function could report it.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from cxr_viewer.ui.app import apply_theme, make_app
    from cxr_viewer.ui.main_window import MainWindow

    app = make_app()
    apply_theme(app, "dark")
    # Settings in the work folder: the self-test never touches the reader's preferences.
    settings = QSettings(str(settings_file), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    shown: list[Any] = []
    problems: list[Any] = []
    loop = QEventLoop()
    window.imageShown.connect(shown.append)
    window.imageShown.connect(lambda _image: loop.quit())
    window.problemsReported.connect(problems.extend)
    try:
        window.show()
        window.open_paths([str(p) for p in paths])
        if not shown:
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
        _check(not problems, "gui", f"the viewer reported problems: {problems}")
        _check(bool(shown), "gui", f"the viewer showed no image within {timeout_s:.0f} s")
        opened = {str(p) for p in paths}
        _check(
            str(shown[0].path) in opened,
            "gui",
            f"the viewer showed {shown[0].path}, not one of the sample files",
        )
        app.processEvents()
        grabbed = window.grab().toImage()
        _check(not grabbed.isNull(), "gui", "the main window could not be drawn")
        colours = {
            grabbed.pixel(x, y)
            for x in range(0, grabbed.width(), 7)
            for y in range(0, grabbed.height(), 7)
        }
        _check(len(colours) > 16, "gui", "the main window drew a blank picture")
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()


# ---- entry point -----------------------------------------------------------------------------


def run_checks(work_dir: Path, model_dir: Path | None = None) -> SelfTestReport:
    """Run every stage, writing into ``work_dir``.

    Parameters
    ----------
    work_dir
        Existing folder for the generated sample study (``sample/``) and the export.
    model_dir
        Model bundle to test; default ``cxr_viewer.paths.default_model_dir()``.

    Returns
    -------
    SelfTestReport
        What was measured.

    Raises
    ------
    SelfTestFailure
        Naming the first stage that failed and why.
    """
    from cxr_viewer.paths import default_model_dir

    report = SelfTestReport()
    model_path = Path(model_dir) if model_dir is not None else default_model_dir()
    bundle = _timed("model", report, lambda: _load_model(model_path))
    report.model_name, report.model_version = bundle.card.name, bundle.card.version

    sample_dir = work_dir / "sample"
    paths = _timed("sample", report, lambda: _generate_sample(sample_dir))
    images = _timed("load", report, lambda: _open_sample(sample_dir, paths))
    report.n_images = len(images)

    predictions = _timed("predict", report, lambda: _predict_all(bundle, images))
    image, prediction = images[0], predictions[0]
    top = prediction.ranked()[0]
    report.top_finding, report.top_probability = top.finding, float(top.probability)

    cams = _timed("cams", report, lambda: _cams_for(bundle, image, top.finding))
    report.cam_method = str(cams.method)
    report.cam_shape = tuple(int(n) for n in cams.maps[top.finding].shape)  # type: ignore[assignment]

    path, shape = _timed(
        "export", report, lambda: _export(bundle, image, prediction, cams, top.finding, work_dir)
    )
    report.export_path, report.export_shape = path, shape
    report.export_bytes = path.stat().st_size

    _timed("gui", report, lambda: _open_in_viewer(paths, work_dir / "settings.ini"))
    return report


def run_self_test(
    out_dir: str | Path | None = None,
    model_dir: str | Path | None = None,
    stream: TextIO | None = None,
) -> int:
    """Run the installation self-test and print its one-line result.

    Parameters
    ----------
    out_dir
        Folder to write the sample study and export into, kept afterwards. Default: the folder in
        ``$CXR_VIEWER_SELFTEST_DIR`` if set, else a temporary folder removed at the end.
    model_dir
        Model bundle to test; default: the bundled one (``cxr_viewer.paths.default_model_dir()``).
    stream
        Where the summary goes (default stdout); failures go to stderr.

    Returns
    -------
    int
        0 when every stage passed, 1 otherwise (after ``self-test FAILED: <stage>: <reason>``).
    """
    # Before TensorFlow is imported (lazily, by the model stage): keep its C++ logs quiet.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = stream if stream is not None else sys.stdout
    chosen = out_dir if out_dir is not None else os.environ.get(OUT_DIR_ENV) or None
    if chosen is not None:
        work_dir, keep = Path(chosen), True
        work_dir.mkdir(parents=True, exist_ok=True)
    else:
        work_dir, keep = Path(tempfile.mkdtemp(prefix="cxr-viewer-self-test-")), False
    try:
        report = run_checks(work_dir, Path(model_dir) if model_dir is not None else None)
        report.export_kept = keep
    except SelfTestFailure as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, CxrError):
            # An unexpected error (e.g. a module missing from a bundle): show where it came from.
            traceback.print_exception(cause, file=sys.stderr)
        one_line = " ".join(exc.reason.split())  # e.g. a multi-line Keras message
        print(f"self-test FAILED: {exc.stage}: {one_line}", file=sys.stderr)
        return 1
    finally:
        if not keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    print(report.summary_line(), file=out, flush=True)
    return 0
