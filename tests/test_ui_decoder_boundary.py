"""A decoder that panics (a BaseException) in the GUI's loading workers: reported, app survives."""

from __future__ import annotations

import numpy as np
import pytest

from tests.panicking_decoder import LABEL, panicking_rle_decoder
from tests.test_io_decoder_boundary import make_rle
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import wait_for_image, write_png

pytestmark = pytest.mark.gui


def test_panicking_decoder_is_reported_and_the_viewer_goes_on(qtbot, window, tmp_path):
    bad = make_rle(tmp_path / "rle.dcm")
    good = write_png(tmp_path / "good.png", np.tile(np.arange(64, dtype=np.uint8), (48, 1)))
    reported: list[tuple[str, str]] = []
    window.problemsReported.connect(reported.extend)
    with panicking_rle_decoder():
        # Files opened one by one: the probe worker loads them.
        window.open_paths([str(bad)])
        qtbot.waitUntil(lambda: any(p == str(bad) for p, _ in reported), timeout=20000)
        # The "open" worker (show_path) as well.
        reported.clear()
        window.show_path(str(bad))
        qtbot.waitUntil(lambda: any(p == str(bad) for p, _ in reported), timeout=20000)
    reason = next(r for p, r in reported if p == str(bad))
    assert str(bad) in reason and LABEL in reason and "1.2.840.10008.1.2.5" in reason
    assert "Could not open" in window.statusBar().currentMessage()
    # The workers and the window still work.
    window.open_paths([str(good)])
    shown = wait_for_image(qtbot, window, good)
    assert shown.shape == (48, 64)


@pytest.mark.corpus
def test_fuzzed_files_through_the_gui_open_path(qtbot, window, corpus_dir, tmp_path):
    """A few fuzzed files opened in the window: each is shown, reported as a problem or listed
    as a result object (a mutated Parametric Map is still one); the app goes on."""
    from tests import fuzzer

    sources = fuzzer.corpus_sources(corpus_dir)
    paths = []
    for index in range(28):  # two of each mutation
        mutation, _source, data = fuzzer.make_case(index, 20261201, sources)
        path = tmp_path / f"case{index}-{mutation}.dcm"
        path.write_bytes(data)
        paths.append(str(path))
    reported: dict[str, str] = {}
    listed: dict[str, str] = {}  # result objects (a mutated Parametric Map stays one)
    window.problemsReported.connect(lambda items: reported.update(dict(items)))
    window.resultObjectsListed.connect(lambda items: listed.update(dict(items)))
    for path in paths:
        window.open_paths([path])
        qtbot.waitUntil(
            lambda p=path: p in reported or p in listed or (
                window.current_image is not None and window.current_image.path == p
                and window.view.image is window.current_image),
            timeout=60000,
        )
        if path in listed:  # listed where the user sees it, and no other image left on screen
            assert path in window.browser.problem_paths()
            assert window.current_image is None and window.view.image is None
    assert reported, "no fuzzed file was refused: the cases are too tame"
    assert all(path in reason for path, reason in reported.items()), [(p, r) for p, r in reported.items() if p not in r]
    assert all(path in text for path, text in listed.items())
    assert window.isVisible()
