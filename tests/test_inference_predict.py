"""Model outputs -> Prediction, and the model-input preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.card import InputSpec
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.predict import build_prediction
from cxr_viewer.inference.preprocess import display_to_input, normalize, prepare
from tests.inference_testkit import gray_image, vindr_card


def _partial_card():
    # scores 3 findings (thresholds differ), one extra output, and "No finding"
    return vindr_card(
        findings=("Cardiomegaly", "Pleural effusion", "Nodule/Mass"),
        thresholds=(0.3, 0.5, 0.9),
        extra_labels=("Edema",),
        no_finding=True,
    )


def test_prediction_maps_outputs_to_the_14_findings():
    card = _partial_card()
    pred = build_prediction(card, np.array([0.31, 0.2, 0.95, 0.7, 0.05]), "img-1")
    assert pred.image_id == "img-1" and pred.model_name == card.name
    assert [s.finding for s in pred.scores] == list(VINDR_FINDINGS)
    cardio = pred.score("Cardiomegaly")
    assert cardio.probability == pytest.approx(0.31) and cardio.threshold == 0.3 and cardio.flagged
    effusion = pred.score("Pleural effusion")
    assert effusion.probability == pytest.approx(0.2) and not effusion.flagged
    nodule = pred.score("Nodule/Mass")
    assert nodule.flagged and nodule.threshold == 0.9
    ptx = pred.score("Pneumothorax")
    assert ptx.probability is None and ptx.threshold is None and not ptx.flagged
    assert pred.extras == {"Edema": pytest.approx(0.7)}
    assert pred.no_finding == pytest.approx(0.05)
    ranked = [s.finding for s in pred.ranked()]
    assert ranked[:3] == ["Nodule/Mass", "Cardiomegaly", "Pleural effusion"]
    assert len(ranked) == 14


def test_threshold_is_inclusive():
    card = vindr_card(findings=("ILD",), thresholds=(0.25,))
    assert build_prediction(card, np.array([0.25]), "x").score("ILD").flagged


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([0.1, np.nan, 0.3, 0.4, 0.5], "NaN"),
        ([0.1, 1.7, 0.3, 0.4, 0.5], "not probabilities"),
        ([0.1, 0.2], "returned 2 outputs"),
    ],
)
def test_outputs_that_are_not_probabilities_are_refused(outputs, message):
    with pytest.raises(ModelError, match=message):
        build_prediction(_partial_card(), np.array(outputs), "x")


def test_normalizations():
    pixels = np.array([[0, 255]], dtype=np.uint8)
    assert normalize(pixels, "unit", 1)[..., 0].tolist() == [[0.0, 1.0]]
    assert normalize(pixels, "minus_one_one", 1)[..., 0].tolist() == [[-1.0, 1.0]]
    three = normalize(pixels, "imagenet_torch", 3)
    assert three.shape == (1, 2, 3)
    assert three[0, 1] == pytest.approx((1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225])
    caffe = normalize(pixels, "imagenet_caffe", 3)
    assert caffe[0, 0] == pytest.approx([-103.939, -116.779, -123.68])
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize(pixels, "zscore", 1)


def test_display_to_input_letterboxes_and_scales():
    display = np.full((100, 50), 255, dtype=np.uint8)
    x, transform = display_to_input(display, InputSpec(height=32, width=32, channels=3))
    assert x.shape == (32, 32, 3) and x.dtype == np.float32
    _, _, c0, c1 = transform.target_box
    assert (c0, c1) == (8, 24)
    assert np.all(x[:, c0:c1] == 1.0) and np.all(x[:, :c0] == 0.0)


def test_prepare_uses_the_default_display_window():
    """MONOCHROME1 is displayed inverted: the brightest stored value becomes input 0."""
    values = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    spec = InputSpec(height=2, width=2, channels=1, resize="stretch")
    mono2 = prepare(gray_image(values), spec)
    mono1 = prepare(gray_image(values, photometric="MONOCHROME1"), spec)
    assert mono2.batch.shape == (1, 2, 2, 1)
    assert mono2.batch[0, 1, 1, 0] == pytest.approx(1.0) and mono2.batch[0, 0, 0, 0] == 0.0
    assert mono1.batch[0, 1, 1, 0] == 0.0 and mono1.batch[0, 0, 0, 0] == pytest.approx(1.0)
    assert mono2.original_shape == (2, 2)


@pytest.mark.corpus
def test_model_sees_the_viewers_default_rendering(corpus_dir):
    """Real MONOCHROME1 CR: the model input is the dcmtk-exact default display, inverted."""
    from cxr_viewer.imaging.presets import default_preset
    from cxr_viewer.imaging.render import render_display
    from cxr_viewer.inference.preprocess import render_default_display
    from cxr_viewer.io.loader import load_image

    image = load_image(corpus_dir / "corpus" / "dicom-test-files__WG04_RG3_JLSN.dcm")
    assert image.photometric == "MONOCHROME1"
    shown = render_display(image, default_preset(image).resolve(image))
    assert np.array_equal(render_default_display(image), shown)
    prepared = prepare(image, InputSpec(height=64, width=64, channels=1))
    expected, _ = display_to_input(shown, InputSpec(height=64, width=64, channels=1))
    assert np.array_equal(prepared.batch[0], expected)
