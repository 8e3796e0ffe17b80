"""Shared fixtures. Tests that need ../shared data skip with a clear reason when it is absent."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# TensorFlow: quiet logs, deterministic CPU ops, and never more threads than the 2-core machine has.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The audit trail (and any per-user data) goes to a throw-away folder, never the tester's own.
if "CXR_VIEWER_DATA_DIR" not in os.environ:
    os.environ["CXR_VIEWER_DATA_DIR"] = tempfile.mkdtemp(prefix="cxr-viewer-test-data-")
    atexit.register(shutil.rmtree, os.environ["CXR_VIEWER_DATA_DIR"], ignore_errors=True)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CXR_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"shared data {path} is absent (set CXR_SHARED_DATA or place ../shared/data)")
    return path


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """../shared/data/dicom-corpus (corpus/, reference/, manifest.csv)."""
    return _shared("dicom-corpus")


@pytest.fixture(scope="session")
def nih_dir() -> Path:
    """../shared/data/nih-cxr (images/, labels.csv, boxes.csv)."""
    return _shared("nih-cxr")


@pytest.fixture(scope="session")
def vinbig_csv() -> Path:
    """../shared/data/vinbigdata/train.csv.gz."""
    path = _shared("vinbigdata") / "train.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A folder with the generated sample study (the current radiograph and its prior), made
    once per test module so that no module sees another's changes to it."""
    from cxr_viewer.io.sample import generate_sample_study

    out = tmp_path_factory.mktemp("sample")
    generate_sample_study(out)
    return out
