"""The overlay-plane toggle in the viewer (key O, View menu), and its export."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from cxr_viewer.export.annotated import compose_annotated
from cxr_viewer.imaging.render import render_display
from tests.ui_fixtures import *  # noqa: F403 - fixtures
from tests.ui_fixtures import wait_for_image

pytestmark = [pytest.mark.gui, pytest.mark.corpus]

STEM = "pydicom__examples_overlay"


def test_overlay_planes_on_by_default_key_o_toggles_and_export_follows(qtbot, window,
                                                                        corpus_dir):
    path = corpus_dir / "corpus" / f"{STEM}.dcm"
    window.open_paths([str(path)])
    image = wait_for_image(qtbot, window, path)
    voi = window.view.voi
    with_planes = render_display(image, voi, overlays=True)
    without = render_display(image, voi, overlays=False)
    assert int((with_planes != without).sum()) == 222
    assert window.view.show_overlay_planes and window.actions["overlay_planes"].isChecked()
    np.testing.assert_array_equal(window.view.displayed, with_planes)
    assert window.export_request().overlay_planes

    qtbot.keyClick(window.view.glw.viewport(), Qt.Key.Key_O)
    qtbot.waitUntil(lambda: not window.view.show_overlay_planes, timeout=5000)
    assert not window.actions["overlay_planes"].isChecked()
    np.testing.assert_array_equal(window.view.displayed, without)
    request = window.export_request()
    assert request.overlay_planes is False
    # The export burns planes in only when shown.
    hidden = compose_annotated(request)
    import dataclasses

    shown = compose_annotated(dataclasses.replace(request, overlay_planes=True))
    assert not np.array_equal(hidden, shown)

    qtbot.keyClick(window.view.glw.viewport(), Qt.Key.Key_O)
    qtbot.waitUntil(lambda: window.view.show_overlay_planes, timeout=5000)
    np.testing.assert_array_equal(window.view.displayed, with_planes)
