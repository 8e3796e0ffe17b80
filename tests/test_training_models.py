"""Architectures: the compact CNN's Grad-CAM layer, and the logit-averaging ensemble."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxr_viewer.training.models import CAM_LAYER, OUTPUT_LAYER, compact_cnn, ensemble


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def test_compact_cnn_shapes() -> None:
    m = compact_cnn(64, 5, width=0.25)
    assert m.output_shape == (None, 5)
    assert m.get_layer(CAM_LAYER).output.shape[1:3] == (4, 4)  # 1/16 of the input
    with pytest.raises(ValueError, match="multiple of 16"):
        compact_cnn(60, 5)


@pytest.mark.slow
def test_ensemble_averages_logits_and_loads_safely(tmp_path: Path) -> None:
    import keras

    rng = np.random.default_rng(0)
    members = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        m = compact_cnn(32, 3, width=0.25)
        w, b = m.get_layer(OUTPUT_LAYER).get_weights()
        m.get_layer(OUTPUT_LAYER).set_weights([rng.normal(size=w.shape).astype(np.float32),
                                               rng.normal(size=b.shape).astype(np.float32)])
        members.append(m)
    ens = ensemble(members)
    x = rng.random((2, 32, 32, 1)).astype(np.float32)
    expected = np.mean([_logit(np.asarray(m(x, training=False))) for m in members], axis=0)
    np.testing.assert_allclose(_logit(np.asarray(ens(x, training=False))), expected, atol=1e-4)
    assert ens.get_layer(CAM_LAYER).output.shape[-1] == sum(
        m.get_layer(CAM_LAYER).output.shape[-1] for m in members
    )
    path = tmp_path / "ens.keras"
    ens.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(ens(x)), atol=1e-6)
    from cxr_viewer.inference.gradcam import CamEngine

    cams, probs = CamEngine(loaded, CAM_LAYER, (32, 32, 1)).gradcam_all(x[:1])
    assert cams.shape == (3, 2, 2) and np.all(cams >= 0)
    np.testing.assert_allclose(probs, np.asarray(ens(x[:1]))[0], atol=1e-5)


def test_cam_head_is_the_grad_cam_map_and_shares_the_kernel() -> None:
    import keras

    from cxr_viewer.training.models import with_cam_head

    keras.utils.set_random_seed(3)
    m = compact_cnn(64, 4, width=0.25)
    rng = np.random.default_rng(1)
    w, b = m.get_layer(OUTPUT_LAYER).get_weights()
    m.get_layer(OUTPUT_LAYER).set_weights([rng.normal(size=w.shape).astype(np.float32), b])
    train = with_cam_head(m)
    # no new weights: the map uses the classifier's own kernel (exported model = m)
    assert {id(v) for v in train.weights} == {id(v) for v in m.weights}
    x = rng.random((1, 64, 64, 1)).astype(np.float32)
    out = train(x, training=False)
    feats = keras.Model(m.inputs, m.get_layer(CAM_LAYER).output)(x, training=False)
    kernel = m.get_layer(OUTPUT_LAYER).kernel.numpy()
    cam = np.asarray(out["box_map"])
    assert cam.shape == (1, 4, 4, 4)
    np.testing.assert_allclose(cam, np.einsum("bhwc,cl->bhwl", np.asarray(feats), kernel),
                               rtol=1e-4, atol=1e-5)
    # the viewer's Grad-CAM of a GAP -> Dense head is ReLU(map) up to a positive factor
    from cxr_viewer.inference.gradcam import CamEngine

    cams, _ = CamEngine(m, CAM_LAYER, (64, 64, 1)).gradcam_all(x)
    expected = np.maximum(np.moveaxis(cam[0], -1, 0), 0)
    for j in range(4):
        if expected[j].max() > 0:
            np.testing.assert_allclose(cams[j] / cams[j].max(), expected[j] / expected[j].max(),
                                       atol=1e-4)
        else:
            assert cams[j].max() == 0
