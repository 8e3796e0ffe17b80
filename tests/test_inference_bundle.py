"""Model bundle loading and verification (cxr_viewer.inference.bundle)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.bundle import (
    card_preset_seed_h5,
    load_any,
    load_bundle,
    load_model_file,
)
from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.inference.gradcam import SALIENCY_FALLBACK_NOTE
from tests.inference_testkit import cam_model, gray_image, seed_h5_model, vindr_card, write_bundle


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle") / "tiny"
    return write_bundle(folder, cam_model(32), vindr_card(32))


def test_good_bundle_loads_and_predicts(good_bundle):
    bundle = load_bundle(good_bundle)
    assert bundle.card.name == "Tiny test model"
    assert bundle.cam_layer == "cam_features"
    image = gray_image(np.random.default_rng(0).integers(0, 4096, (50, 40), dtype=np.uint16))
    pred = bundle.predict(image)
    assert pred.image_id == image.image_id
    assert [s.finding for s in pred.scores] == list(VINDR_FINDINGS)
    assert all(0.0 <= s.probability <= 1.0 for s in pred.scores)
    assert pred.weights_sha256 == bundle.card.weights_sha256 != ""


def _copy_bundle(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _edit_card(folder, **changes):
    card = json.loads((folder / "model.json").read_text())
    card.update(changes)
    (folder / "model.json").write_text(json.dumps(card))


def test_bad_hash_is_refused(good_bundle, tmp_path):
    folder = _copy_bundle(good_bundle, tmp_path / "b")
    _edit_card(folder, weights_sha256="0" * 64)
    with pytest.raises(ModelError, match="SHA-256 .* differs from the card") as err:
        load_bundle(folder)
    assert "model.keras" in str(err.value)


def test_tampered_weights_are_refused(good_bundle, tmp_path):
    folder = _copy_bundle(good_bundle, tmp_path / "b")
    with open(folder / "model.keras", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="differs from the card"):
        load_bundle(folder)


def test_card_without_hash_is_refused(good_bundle, tmp_path):
    folder = _copy_bundle(good_bundle, tmp_path / "b")
    _edit_card(folder, weights_sha256="")
    with pytest.raises(ModelError, match="no weights_sha256"):
        load_bundle(folder)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input": {"height": 64, "width": 64, "channels": 1}}, r"model input is \(32, 32, 1\)"),
        ({"input": {"height": 32, "width": 32, "channels": 3}}, "the card says"),
        ({"gradcam_layer": "predictions"}, "does not output a 4-D feature map"),
        ({"gradcam_layer": "no_such_layer"}, "is not a layer of the model"),
        ({"weights": "../model.keras"}, "must be a file name in the bundle"),
        ({"weights": "missing.keras"}, "missing"),
    ],
)
def test_card_model_mismatches_are_refused(good_bundle, tmp_path, changes, message):
    folder = _copy_bundle(good_bundle, tmp_path / "b")
    _edit_card(folder, **changes)
    with pytest.raises(ModelError, match=message):
        load_bundle(folder)


def test_wrong_output_count_is_refused(tmp_path):
    card = vindr_card(32, findings=VINDR_FINDINGS[:5])  # 5 labels, the model has 14 outputs
    folder = write_bundle(tmp_path / "b", cam_model(32), card)
    with pytest.raises(ModelError, match=r"model output is \(14,\), the card lists 5 labels"):
        load_bundle(folder)


def test_one_by_one_gradcam_layer_is_refused(tmp_path):
    import keras

    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 16, name="whole_image_conv")(inp)  # 1x1 output
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(14, activation="sigmoid")(x)
    card = vindr_card(16, gradcam_layer="whole_image_conv")
    folder = write_bundle(tmp_path / "b", keras.Model(inp, out), card)
    with pytest.raises(ModelError, match="is 1x1: too small"):
        load_bundle(folder)


def test_lambda_layer_is_refused(tmp_path):
    import keras

    inp = keras.Input((32, 32, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inp)
    x = keras.layers.Conv2D(4, 3, name="cam_features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(14, activation="sigmoid")(x)
    folder = write_bundle(tmp_path / "b", keras.Model(inp, out), vindr_card(32))
    with pytest.raises(ModelError, match="Lambda layer") as err:
        load_bundle(folder)
    assert "model.keras" in str(err.value)


def test_non_sigmoid_output_is_refused(tmp_path):
    import keras

    inp = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(4, 3, name="cam_features")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(14, activation="softmax")(x)
    folder = write_bundle(tmp_path / "b", keras.Model(inp, out), vindr_card(32))
    with pytest.raises(ModelError, match="activation 'softmax'"):
        load_bundle(folder)


def test_missing_and_invalid_cards(tmp_path):
    with pytest.raises(ModelError, match="model bundle not found"):
        load_bundle(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="model card not found"):
        load_bundle(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_bundle(tmp_path / "bad")


def test_corrupt_weights_file_is_refused(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"this is not a zip file")
    from cxr_viewer.inference.bundle import sha256_file

    card = dataclasses.replace(vindr_card(32), weights_sha256=sha256_file(folder / "model.keras"))
    card.save(folder / "model.json")
    with pytest.raises(ModelError, match="not a readable Keras model file"):
        load_bundle(folder)


@pytest.mark.slow
def test_seed_project_h5_loads_runs_and_falls_back_to_saliency(tmp_path):
    """The seed project's format: .h5, 256x256x1 -> Flatten/Dense -> 15 sigmoid, VinBig order."""
    path = tmp_path / "seed_model.h5"
    seed_h5_model().save(path)
    bundle = load_any(path)  # a bare .h5: the seed-project preset by default
    assert bundle.card == dataclasses.replace(
        card_preset_seed_h5(), weights="seed_model.h5", weights_sha256=bundle.card.weights_sha256
    )
    assert bundle.cam_layer is None  # no conv layer
    assert bundle.card.weights_sha256 and bundle.card.weights == "seed_model.h5"
    assert bundle.card.labels[14].finding == NO_FINDING
    rows, cols = np.mgrid[0:300, 0:220]
    image = gray_image(((rows * 7 + cols * 3) % 4096).astype(np.uint16))
    pred = bundle.predict(image)
    assert all(s.probability is not None for s in pred.scores)  # the seed model scores all 14
    assert pred.no_finding is not None
    direct = bundle.predict_batch(bundle.prepare(image).batch)[0]
    assert pred.no_finding == pytest.approx(float(direct[14]))
    assert pred.score("Aortic enlargement").probability == pytest.approx(float(direct[0]))
    cams = bundle.cams(image, findings=["Cardiomegaly", "Nodule/Mass"], method="gradcam")
    assert cams.method == "saliency" and cams.note == SALIENCY_FALLBACK_NOTE
    assert set(cams.maps) == {"Cardiomegaly", "Nodule/Mass"}
    heat = cams.maps["Cardiomegaly"]
    assert heat.shape == (300, 220) and heat.dtype == np.float32
    assert heat.max() == pytest.approx(1.0, abs=1e-3) and heat.min() >= 0.0


def test_bare_file_without_matching_preset_is_refused(tmp_path):
    path = tmp_path / "other.keras"
    cam_model(32).save(path)
    with pytest.raises(ModelError, match=r"model input is \(32, 32, 1\), the card says \(256, 256, 1\)"):
        load_model_file(path)  # default preset: the seed format
