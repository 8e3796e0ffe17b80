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
