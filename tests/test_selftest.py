"""``cxr-viewer --self-test``: end to end in the source tree, and each check able to fail."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxr_viewer import selftest
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult, FindingScore, Prediction
from cxr_viewer.io.types import ImageData

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CARD = REPO_ROOT / "models" / "default" / "model.json"

SUMMARY = re.compile(
    r"^self-test OK: cxr-viewer \S+ \| model (?P<model>.+?) \| (?P<n>\d+) images \| "
    r"top finding (?P<finding>.+?) p=(?P<p>[0-9.]+) \| (?P<method>\S+) map "
    r"(?P<rows>\d+)x(?P<cols>\d+) \| export (?P<path>\S+) \((?P<w>\d+)x(?P<h>\d+), "
    r"(?P<bytes>\d+) B\) \| (?P<secs>[0-9.]+) s \(.*\)$"
)


def _run_cli(*args: str, env_extra: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update({"QT_QPA_PLATFORM": "offscreen", "TF_CPP_MIN_LOG_LEVEL": "2"})
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "cxr_viewer", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# ---- end to end, in a subprocess, as a user runs it -----------------------------------------


@pytest.mark.slow
def test_self_test_passes_in_source_tree(tmp_path: Path) -> None:
    if not DEFAULT_CARD.is_file():
        pytest.skip(f"{DEFAULT_CARD} is absent: the bundled model has not been trained yet")
    out = tmp_path / "out"
    proc = _run_cli("--self-test", env_extra={selftest.OUT_DIR_ENV: str(out)}, timeout=600)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    line = proc.stdout.strip().splitlines()[-1]
    match = SUMMARY.match(line)
    assert match, line

    card = json.loads(DEFAULT_CARD.read_text(encoding="utf-8"))
    assert match["model"] == f"{card['name']} {card['version']}"
    # the current study (top level); its prior in prior/ is for the viewer's comparison
    assert int(match["n"]) == len(list((out / "sample").glob("*.dcm"))) >= 2
    assert match["finding"] in VINDR_FINDINGS
    assert 0.0 <= float(match["p"]) <= 1.0

    export = Path(match["path"])
    assert export == out / selftest.EXPORT_NAME
    assert export.stat().st_size == int(match["bytes"])
    with Image.open(export) as png:
        assert png.format == "PNG"
        assert png.size == (int(match["w"]), int(match["h"]))
        pixels = np.asarray(png.convert("RGB"))
    assert pixels.std() > 1.0  # a real picture, not a blank canvas


def test_self_test_names_the_stage_when_the_model_is_missing(tmp_path: Path) -> None:
    # CXR_VIEWER_HOME relocates models/ and resources/ exactly as a bundle does.
    proc = _run_cli("--self-test", env_extra={"CXR_VIEWER_HOME": str(tmp_path)}, timeout=120)
    assert proc.returncode == 1
    expected = tmp_path / "models" / "default"
    assert proc.stderr.strip().splitlines()[-1] == (
        f"self-test FAILED: model: no model bundle at {expected} (model.json is missing)"
    )
    assert "self-test OK" not in proc.stdout


def test_self_test_reports_a_corrupt_model_card(tmp_path: Path, capsys) -> None:
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    (bundle_dir / "model.json").write_text("{not json", encoding="utf-8")
    status = selftest.run_self_test(out_dir=tmp_path / "out", model_dir=bundle_dir)
    assert status == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("self-test FAILED: model: ")
    assert str(bundle_dir) in last  # the message names the bundle


# ---- each check can fail: small stand-ins for the model, real result types ------------------


def _image(rows: int = 40, cols: int = 30) -> ImageData:
    ramp = np.arange(rows * cols, dtype=np.uint16).reshape(1, rows, cols)
    return ImageData(path="/tmp/stand-in.dcm", frames=ramp, bits_stored=12)


def _prediction(image: ImageData, probabilities: list[float | None]) -> Prediction:
    scores = tuple(
        FindingScore(f, p, None if p is None else 0.5, p is not None and p >= 0.5)
        for f, p in zip(VINDR_FINDINGS, probabilities, strict=True)
    )
    return Prediction(image.image_id, "stand-in", "0", "", scores)


class StandInBundle:
    """Returns what it was given: enough to drive the checks, never shipped."""

    def __init__(self, prediction: Prediction | None = None, cams: CamResult | None = None):
        self._prediction, self._cams = prediction, cams

    def predict(self, image: ImageData) -> Prediction:
        assert self._prediction is not None
        return self._prediction

    def cams(self, image: ImageData, findings=None, method: str = "gradcam") -> CamResult:
        assert self._cams is not None
        return self._cams


def test_predict_check_accepts_valid_and_rejects_out_of_range() -> None:
    image = _image()
    good = [0.1 * i / 2 for i in range(13)] + [None]
    assert selftest._predict_all(StandInBundle(_prediction(image, good)), [image])

    bad = [*good[:-2], 1.7, None]
    with pytest.raises(selftest.SelfTestFailure, match=r"predict: .*outside \[0, 1\]: \[1\.7\]"):
        selftest._predict_all(StandInBundle(_prediction(image, bad)), [image])

    with pytest.raises(selftest.SelfTestFailure, match="scored no finding"):
        selftest._predict_all(StandInBundle(_prediction(image, [None] * 14)), [image])


def test_predict_check_rejects_a_result_for_another_image() -> None:
    image, other = _image(), _image()
    pred = _prediction(other, [0.2] * 14)
    with pytest.raises(selftest.SelfTestFailure, match="prediction for another image"):
        selftest._predict_all(StandInBundle(pred), [image])


@pytest.mark.parametrize(
    ("cam", "message"),
    [
        (np.zeros((20, 15), np.float32), r"heat map is \(20, 15\), the image is \(40, 30\)"),
        (np.zeros((40, 30), np.float64), "dtype is float64"),
        (np.full((40, 30), 1.5, np.float32), r"spans \[1\.5, 1\.5\]"),
        (np.full((40, 30), np.nan, np.float32), "NaN"),
    ],
)
def test_cam_check_rejects_wrong_maps(cam: np.ndarray, message: str) -> None:
    image = _image()
    result = CamResult(image.image_id, "gradcam", {"Cardiomegaly": cam})
    with pytest.raises(selftest.SelfTestFailure, match=message):
        selftest._cams_for(StandInBundle(cams=result), image, "Cardiomegaly")


def test_cam_check_accepts_a_map_at_image_size() -> None:
    image = _image()
    cam = np.linspace(0, 1, 40 * 30, dtype=np.float32).reshape(40, 30)
    result = CamResult(image.image_id, "gradcam", {"Cardiomegaly": cam})
    assert selftest._cams_for(StandInBundle(cams=result), image, "Cardiomegaly") is result
    with pytest.raises(selftest.SelfTestFailure, match="no heat map for 'Nodule/Mass'"):
        selftest._cams_for(StandInBundle(cams=result), image, "Nodule/Mass")


def test_summary_line_matches_the_documented_shape() -> None:
    report = selftest.SelfTestReport(
        model_name="cxr-densenet",
        model_version="1.0",
        n_images=2,
        top_finding="Nodule/Mass",
        top_probability=0.4321,
        cam_method="gradcam",
        cam_shape=(2048, 1536),
        export_path=Path("/tmp/x/cxr-viewer-self-test.png"),
        export_bytes=12345,
        export_shape=(1100, 1536),
        export_kept=True,
        stage_seconds={"model": 1.25, "predict": 0.5},
    )
    match = SUMMARY.match(report.summary_line())
    assert match, report.summary_line()
    assert match["finding"] == "Nodule/Mass" and match["p"] == "0.432"
    assert (match["w"], match["h"], match["secs"]) == ("1536", "1100", "1.8")


# ---- every stage end to end, in process, with a tiny model built here -----------------------


@pytest.mark.slow
def test_self_test_runs_every_stage_with_a_tiny_bundle(tmp_path: Path, capsys) -> None:
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    bundle = write_bundle(tmp_path / "bundle", cam_model(48), vindr_card(48))
    status = selftest.run_self_test(out_dir=tmp_path / "work", model_dir=bundle)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    match = SUMMARY.match(captured.out.strip())
    assert match, captured.out
    assert match["model"] == "Tiny test model 0.0.1"
    assert match["method"] == "gradcam"
    timings = captured.out.strip().rsplit("(", 1)[1]  # "model 0.0 sample 1.0 ... gui 0.6)"
    stages = re.findall(r"(\w+) [0-9.]+", timings)
    assert stages == list(selftest.STAGES), timings

    # The map has the size of the first sample image, as loaded from the generated file.
    from cxr_viewer.io.loader import load_image

    first = sorted((tmp_path / "work" / "sample").glob("*.dcm"))[0]
    assert (int(match["rows"]), int(match["cols"])) == load_image(first).shape
    export = tmp_path / "work" / selftest.EXPORT_NAME
    assert export.stat().st_size == int(match["bytes"])
    # De-identified: the sample's patient name is nowhere in the written file.
    from cxr_viewer.io.sample import PATIENT_NAME

    assert str(PATIENT_NAME).encode() not in export.read_bytes()
    # The viewer's settings went to the work folder, not to the user's configuration.
    assert (tmp_path / "work" / "settings.ini").is_file()


# ---- the installer's desktop integration files ----------------------------------------------

RESOURCES = REPO_ROOT / "resources"
INSTALLER = REPO_ROOT / "installer"


def _desktop_entry() -> dict[str, str]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(RESOURCES / "cxr-viewer.desktop", encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_desktop_entry_launches_the_viewer_with_its_icon() -> None:
    entry = _desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "cxr-viewer"  # the install script makes it absolute
    assert entry["Exec"].split()[1:] == ["%F"]  # opens any number of files
    assert entry["Terminal"] == "false"
    assert "application/dicom" in entry["MimeType"].split(";")
    assert "not for primary diagnosis" in entry["Comment"]
    icon = entry["Icon"]
    assert (RESOURCES / "icons" / f"{icon}.svg").is_file()
    pngs = sorted((RESOURCES / "icons" / "hicolor").glob(f"*/apps/{icon}.png"))
    assert {p.parent.parent.name for p in pngs} >= {"16x16", "32x32", "48x48", "256x256"}
    for png in pngs:
        with Image.open(png) as img:
            assert f"{img.width}x{img.height}" == png.parent.parent.name, png
            assert img.mode == "RGBA"


def test_desktop_entry_passes_desktop_file_validate() -> None:
    import shutil

    tool = shutil.which("desktop-file-validate")
    if tool is None:
        pytest.skip("desktop-file-validate (desktop-file-utils) is not installed")
    proc = subprocess.run(
        [tool, str(RESOURCES / "cxr-viewer.desktop")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout.lower()


def _make_icon_module():
    import importlib.util

    if "make_icon" in sys.modules:
        return sys.modules["make_icon"]
    spec = importlib.util.spec_from_file_location("make_icon", INSTALLER / "make_icon.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_icon"] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_committed_icons_are_what_make_icon_draws() -> None:
    make_icon = _make_icon_module()
    icons = RESOURCES / "icons"
    assert (icons / "cxr-viewer.svg").read_text(encoding="utf-8") == make_icon.to_svg()
    for px in (16, 48):  # one without ribs, one with (the rest: installer/make_icon.py --check)
        fresh = np.asarray(make_icon.render(px), dtype=np.int16)
        with Image.open(icons / "hicolor" / f"{px}x{px}" / "apps" / "cxr-viewer.png") as png:
            committed = np.asarray(png.convert("RGBA"), dtype=np.int16)
        assert int(np.abs(fresh - committed).max()) <= 2, px
    with Image.open(icons / "cxr-viewer.ico") as ico:
        assert {(16, 16), (32, 32), (256, 256)} <= set(ico.info["sizes"])


# ---- install-linux.sh / uninstall-linux.sh with a stand-in bundle --------------------------


def _stand_in_bundle(root: Path) -> Path:
    """A folder shaped like dist/cxr-viewer/ whose executable only echoes its arguments."""
    import shutil

    bundle = root / "cxr-viewer"
    (bundle / "_internal" / "models" / "default").mkdir(parents=True)
    (bundle / "_internal" / "models" / "default" / "model.json").write_text("{}")
    shutil.copytree(RESOURCES, bundle / "_internal" / "resources")
    exe = bundle / "cxr-viewer"
    exe.write_text('#!/bin/sh\necho "stand-in viewer $*"\n')
    exe.chmod(0o755)
    return bundle


def _sh(*args: object, home: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(
        ["bash", *map(str, args)], capture_output=True, text=True, env=env, timeout=60
    )


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("layout", ["user", "opt"])
def test_install_then_uninstall_leaves_nothing_behind(tmp_path: Path, layout: str) -> None:
    bundle = _stand_in_bundle(tmp_path / "dist")
    home = tmp_path / "home"
    home.mkdir()
    if layout == "user":
        prefix = home / ".local"
        args = ["--prefix", prefix]
        app, link = prefix / "lib" / "cxr-viewer", prefix / "bin" / "cxr-viewer"
        share = prefix / "share"
    else:  # /opt layout, with the shared folders redirected into tmp_path
        prefix = tmp_path / "opt"
        share = tmp_path / "usr" / "share"
        args = ["--prefix", prefix, "--bindir", tmp_path / "usr" / "bin", "--datadir", share]
        app, link = prefix / "cxr-viewer", tmp_path / "usr" / "bin" / "cxr-viewer"
    before = _tree(tmp_path)

    proc = _sh(INSTALLER / "install-linux.sh", *args, "--bundle", bundle, home=home)
    assert proc.returncode == 0, proc.stderr
    assert link.resolve() == (app / "cxr-viewer").resolve()
    run = subprocess.run([str(link), "--self-test"], capture_output=True, text=True)
    assert run.stdout.strip() == "stand-in viewer --self-test"
    desktop = (share / "applications" / "cxr-viewer.desktop").read_text(encoding="utf-8")
    assert f'Exec="{app}/cxr-viewer" %F' in desktop.splitlines()
    assert f"TryExec={app}/cxr-viewer" in desktop.splitlines()
    assert (share / "icons" / "hicolor" / "scalable" / "apps" / "cxr-viewer.svg").is_file()
    assert (share / "icons" / "hicolor" / "48x48" / "apps" / "cxr-viewer.png").is_file()
    assert (app / "_internal" / "models" / "default" / "model.json").is_file()

    # A second install upgrades in place; a foreign folder at the target is refused.
    proc = _sh(INSTALLER / "install-linux.sh", *args, "--bundle", bundle, home=home)
    assert proc.returncode == 0 and "replacing the earlier install" in proc.stdout, proc.stderr

    # The copy inside the app folder uninstalls without knowing the prefix.
    proc = _sh(app / "uninstall-linux.sh", home=home)
    assert proc.returncode == 0, proc.stderr
    after = {p for p in _tree(tmp_path) if not p.endswith("mimeinfo.cache")}
    leftovers = sorted(p for p in after - before if not Path(tmp_path, p).is_dir())
    assert leftovers == []
    assert not app.exists() and not link.is_symlink()


def test_install_refuses_to_overwrite_a_folder_it_did_not_create(tmp_path: Path) -> None:
    bundle = _stand_in_bundle(tmp_path / "dist")
    foreign = tmp_path / "prefix" / "lib" / "cxr-viewer"
    foreign.mkdir(parents=True)
    (foreign / "precious.txt").write_text("keep me")
    proc = _sh(
        INSTALLER / "install-linux.sh",
        "--prefix",
        tmp_path / "prefix",
        "--bundle",
        bundle,
        home=tmp_path,
    )
    assert proc.returncode == 1
    assert "was not installed by this script" in proc.stderr
    assert (foreign / "precious.txt").read_text() == "keep me"
    proc = _sh(INSTALLER / "uninstall-linux.sh", "--prefix", tmp_path / "prefix", home=tmp_path)
    assert proc.returncode == 1 and "no install manifest" in proc.stderr
    assert (foreign / "precious.txt").is_file()
