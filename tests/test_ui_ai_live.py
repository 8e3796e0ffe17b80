"""The window with a real (tiny) model bundle: load in a worker, findings and heat maps for the
image on screen, never another image's results. TensorFlow runs here: marked slow."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.inference_testkit import cam_model, vindr_card, write_bundle
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import CORPUS_FILES, wait_for_image

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def test_real_bundle_findings_and_heat_map_follow_the_image(qtbot, window, corpus_dir, tmp_path):
    bundle = write_bundle(tmp_path / "bundle", cam_model(48), vindr_card(48))
    with qtbot.waitSignal(window.analysis.modelLoaded, timeout=120000):
        window.load_model(str(bundle))
    assert window.card.name == "Tiny test model"
    # two real chest radiographs: the model only reads chest CR/DX
    a = corpus_dir / "corpus" / "fo-dicom__CR-MONO1-10-chest.dcm"
    b = corpus_dir / "corpus" / "torchxrayvision__SIIM_CXR_850819.dcm"
    window.open_paths([str(a), str(b)])
    wait_for_image(qtbot, window, a)
    window.show_path(str(b))  # switch before A's analysis can finish
    image_b = wait_for_image(qtbot, window, b)
    qtbot.waitUntil(lambda: window.prediction is not None and window.cams is not None,
                    timeout=120000)
    assert window.prediction.image_id == image_b.image_id
    assert window.cams.image_id == image_b.image_id
    assert window.findings_panel.ranked_findings()[0] == window.prediction.ranked()[0].finding
    # an untrained model may score everything below its thresholds: ask for the map anyway
    window.findings_panel.below_check.setChecked(True)
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert window.view.heatmap_visible()
    assert window.view.heat_rgba.shape[:2] == image_b.shape
    assert np.any(window.view.heat_rgba[..., 3] == 255)
    qtbot.keyClick(window, Qt.Key.Key_H)
    assert not window.view.heatmap_visible()


def test_an_mr_image_is_not_analysed_and_the_panel_says_why(qtbot, window, corpus_dir, tmp_path):
    bundle = write_bundle(tmp_path / "bundle", cam_model(48), vindr_card(48))
    with qtbot.waitSignal(window.analysis.modelLoaded, timeout=120000):
        window.load_model(str(bundle))
    mr = corpus_dir / "corpus" / CORPUS_FILES["mr_small"]
    with qtbot.waitSignal(window.analysis.failed, timeout=120000) as blocker:
        window.open_paths([str(mr)])
    assert "not analysed: modality MR" in blocker.args[0]
    panel = window.findings_panel
    qtbot.waitUntil(lambda: "Not analysed: modality MR" in panel.refusal_label.text())
    assert panel.refusal_label.isVisible() and panel.refused
    assert window.prediction is None and window.cams is None
