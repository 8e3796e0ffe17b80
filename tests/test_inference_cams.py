"""Heat maps: the fast all-label Grad-CAM against tf-keras-vis, and the geometry round trip."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.inference.bundle import load_bundle
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.gradcam import normalize_max
from tests.inference_testkit import (
    blob_image,
    brightness_model,
    cam_model,
    gray_image,
    vindr_card,
    write_bundle,
)

SCORED = VINDR_FINDINGS[:6]


@pytest.fixture(scope="module")
def random_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cams") / "random"
    return load_bundle(write_bundle(folder, cam_model(48, seed=3), vindr_card(48)))


@pytest.fixture(scope="module")
def brightness_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cams") / "brightness"
    card = vindr_card(64, findings=SCORED, resize="letterbox")
    return load_bundle(write_bundle(folder, brightness_model(64, outputs=len(SCORED)), card))


@pytest.mark.slow
def test_fast_gradcam_equals_tf_keras_vis_gradcam(random_bundle):
    """One jacobian pass == 14 tf-keras-vis Gradcam calls (layer explicit, ReplaceToLinear)."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    x = np.random.default_rng(1).random((1, 48, 48, 1), dtype=np.float32)
    raw, probs = random_bundle.engine.gradcam_all(x)
    assert raw.shape == (14, 24, 24)
    assert np.allclose(probs, random_bundle.predict_batch(x)[0], atol=1e-6)
    gradcam = Gradcam(random_bundle.model, model_modifier=ReplaceToLinear(), clone=True)
    positive = 0
    for i in range(14):
        before_relu = np.asarray(
            gradcam(
                CategoricalScore(i),
                x,
                penultimate_layer="cam_features",
                seek_penultimate_conv_layer=False,
                activation_modifier=None,
                expand_cam=False,
                normalize_cam=False,
            )[0]
        )
        assert np.abs(before_relu).max() > 0  # a real map, not a vacuous comparison
        ref = np.maximum(before_relu, 0.0)
        positive += int(ref.max() > 0)
        assert np.allclose(raw[i], ref, rtol=1e-4, atol=1e-5 * np.abs(before_relu).max())
    assert positive >= 3  # several labels have visible maps (random weights)
    # and the library's own per-label path through the engine agrees after normalisation
    lib = random_bundle.engine.tf_keras_vis_maps("gradcam", x, list(range(14)))
    assert np.allclose(normalize_max(raw), lib, atol=1e-5)


def test_cam_peak_lands_on_the_blob_in_original_pixels(brightness_bundle):
    """Letterboxed non-square image: the CAM peak maps back onto the bright disc."""
    shape, centre = (240, 160), (70, 110)
    image = gray_image(blob_image(shape, centre, radius=12))
    result = brightness_bundle.cams(image)
    assert result.image_id == image.image_id and result.method == "gradcam"
    assert set(result.maps) == set(SCORED)
    for finding in SCORED:
        heat = result.maps[finding]
        assert heat.shape == shape and heat.dtype == np.float32
        assert heat.max() == pytest.approx(1.0) and heat.min() >= 0.0
        r, c = np.unravel_index(int(np.argmax(heat)), shape)
        # one conv cell is 4 input pixels = 15 original pixels here
        assert abs(r - centre[0]) <= 8 and abs(c - centre[1]) <= 8
        # far from the disc there is (almost) no attention
        assert heat[220, 20] < 0.1


def test_monochrome1_image_is_inverted_before_the_model(brightness_bundle):
    """The model sees what the radiologist sees: a MONOCHROME1 dark disc is displayed bright."""
    shape, centre = (200, 200), (150, 50)
    values = blob_image(shape, centre, radius=14)
    inverted = (values.max() - values).astype(np.uint16)  # disc dark in stored values
    result = brightness_bundle.cams(gray_image(inverted, photometric="MONOCHROME1"))
    heat = result.maps[SCORED[0]]
    r, c = np.unravel_index(int(np.argmax(heat)), shape)
    assert abs(r - centre[0]) <= 8 and abs(c - centre[1]) <= 8


def test_findings_subset_and_refusals(random_bundle):
    image = gray_image(blob_image((60, 90), (30, 30), 8))
    result = random_bundle.cams(image, findings=["Cardiomegaly"])
    assert list(result.maps) == ["Cardiomegaly"]
    with pytest.raises(ValueError, match="unknown heat-map method"):
        random_bundle.cams(image, method="guided-backprop")


def test_unscored_finding_is_refused(brightness_bundle):
    image = gray_image(blob_image((60, 90), (30, 30), 8))
    with pytest.raises(ValueError, match="not scored by"):
        brightness_bundle.cams(image, findings=["Pneumothorax"])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gradcam++", "scorecam", "saliency"])
def test_tf_keras_vis_methods_give_full_size_maps(brightness_bundle, method):
    shape, centre = (120, 90), (40, 60)
    image = gray_image(blob_image(shape, centre, radius=10))
    result = brightness_bundle.cams(image, findings=list(SCORED[:2]), method=method)
    assert result.method == method and result.note == ""
    heat = result.maps[SCORED[1]]
    assert heat.shape == shape and heat.max() == pytest.approx(1.0)
    if method != "saliency":  # the CAM methods also find the disc; saliency marks its edge
        r, c = np.unravel_index(int(np.argmax(heat)), shape)
        assert abs(r - centre[0]) <= 10 and abs(c - centre[1]) <= 10


def test_warm_up_then_maps_are_computed_on_read(random_bundle):
    random_bundle.warm_up()
    image = gray_image(blob_image((300, 200), (100, 100), 20))
    result = random_bundle.cams(image)
    assert len(result.maps) == 14 and result.maps.original_shape == (300, 200)
    first = result.maps["ILD"]
    assert result.maps["ILD"] is first  # remembered
    assert not first.flags.writeable
    low = result.maps.low_res("ILD")
    assert low.shape == (24, 24)


def test_maps_computed_in_two_goes_merge_lazily(random_bundle):
    from cxr_viewer.inference.gradcam import CamMaps, merge_cam_maps

    image = gray_image(blob_image((80, 50), (40, 20), 8))
    first = random_bundle.cams(image, findings=["ILD"], method="gradcam")
    second = random_bundle.cams(image, findings=["Cardiomegaly"], method="gradcam")
    merged = merge_cam_maps(first.maps, second.maps)
    assert isinstance(merged, CamMaps) and set(merged) == {"ILD", "Cardiomegaly"}
    full = random_bundle.cams(image).maps
    assert np.allclose(merged["Cardiomegaly"], full["Cardiomegaly"])
    assert np.allclose(merged["ILD"], full["ILD"])


def _head_variant_model(kind: str):
    import keras

    keras.utils.set_random_seed(5)
    inp = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="cam_features")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if kind == "activation":  # Dense(linear) -> Activation(sigmoid)
        out = keras.layers.Activation("sigmoid")(keras.layers.Dense(14)(x))
    else:  # two sigmoid heads concatenated: no single layer to undo -> a linear clone
        a = keras.layers.Dense(7, activation="sigmoid")(x)
        b = keras.layers.Dense(7, activation="sigmoid")(x)
        out = keras.layers.Concatenate()([a, b])
    return keras.Model(inp, out)


@pytest.mark.parametrize("kind", ["activation", "concatenate"])
def test_fast_gradcam_with_other_heads_matches_tf_keras_vis(kind, tmp_path):
    bundle = load_bundle(write_bundle(tmp_path / kind, _head_variant_model(kind), vindr_card(32)))
    x = np.random.default_rng(2).random((1, 32, 32, 1), dtype=np.float32)
    raw, probs = bundle.engine.gradcam_all(x)
    assert np.allclose(probs, bundle.predict_batch(x)[0], atol=1e-6)
    reference = bundle.engine.tf_keras_vis_maps("gradcam", x, list(range(14)))
    assert np.allclose(normalize_max(raw), reference, atol=1e-4)
    assert reference.max() == pytest.approx(1.0)
