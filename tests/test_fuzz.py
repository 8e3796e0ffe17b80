"""Seeded fuzzing in the suite: mutated corpus files and raster bombs end as an image or a clean
refusal, within the CPU limit and bounded memory, never a crash, hang or traceback.

The engine is ``tests/fuzzer.py`` (see its docstring); ``make fuzz`` runs long campaigns. Here a
fixed seed and a small case count keep this under a minute; the predict and GUI paths take a
few cases each (TensorFlow and the window are slow to start).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fuzzer

pytestmark = pytest.mark.corpus

SEED = 20261201
CASES = 140  # >= 10 of each of the 14 mutations


@pytest.fixture(scope="module")
def sources(corpus_dir: Path) -> list[Path]:
    return fuzzer.corpus_sources(corpus_dir)


def test_fuzz_load_render_info_cli_and_gui_worker(corpus_dir):
    summary = fuzzer.run_campaign(CASES, SEED, corpus_dir)
    detail = "\n\n".join(
        f"case {f['case']} ({f['mutation']} of {f['source']}): {f['outcome']} "
        f"{f.get('where', '')}\n{f.get('detail', '')}"
        for f in summary.failures
    )
    assert not summary.failures, f"{summary.line()}\n{detail}"
    assert summary.cases == CASES
    assert set(summary.by_mutation) == set(fuzzer.MUTATIONS)
    # Not vacuous: the mutations produce both decodable images and refusals.
    assert summary.outcomes["image"] >= 10 and summary.outcomes["refused"] >= 50, summary.line()


def test_fuzz_cases_are_deterministic(sources):
    for index in (0, 7, 13, 99):
        assert fuzzer.make_case(index, SEED, sources) == fuzzer.make_case(index, SEED, sources)
    assert fuzzer.make_case(5, SEED, sources)[2] != fuzzer.make_case(5, SEED + 1, sources)[2]


def _cases(sources: list[Path], tmp_path: Path, mutations: tuple[str, ...], n: int) -> list[Path]:
    paths = []
    rng = random.Random(SEED)
    index = 0
    while len(paths) < n:
        mutation, _source, data = fuzzer.make_case(index, SEED, sources)
        if mutation in mutations and rng.random() < 0.7:
            path = tmp_path / f"case{index}-{mutation}.dcm"
            path.write_bytes(data)
            paths.append(path)
        index += 1
    return paths


@pytest.mark.slow
def test_fuzz_predict(sources, tmp_path):
    """``cxr-viewer predict`` on a few fuzzed files: each is analysed or refused, exit 0/2."""
    files = _cases(sources, tmp_path, ("bitflip", "bitflip_tail", "wrong_ts", "truncate",
                                        "bad_pixel_attrs", "png_bomb"), 6)
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "cxr_viewer", "predict", *map(str, files), "--out", str(out),
         "--heatmaps"],
        cwd=fuzzer.REPO, capture_output=True, text=True, timeout=600,
    )
    assert r.returncode in (0, 2), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads((out / "predictions.json").read_text())
    seen = [item["file"] for item in doc["images"]] + [item["file"] for item in doc["refused"]]
    assert sorted(seen) == sorted(map(str, files))
    assert all(item["reason"] for item in doc["refused"])
