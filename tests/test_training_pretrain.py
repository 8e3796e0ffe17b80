"""Masked-inpainting pretraining: the loss decreases on tiny synthetic radiograph-like arrays,
the encoder is saved, and its weights land in a freshly built classifier (head untouched)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cxr_viewer.training.config import (
    ModelConfig,
    PretrainConfig,
    TrainConfig,
    config_from_dict,
    load_config,
)

REPO = Path(__file__).resolve().parent.parent


def _images(n: int = 16, size: int = 64) -> np.ndarray:
    """Smooth structured images (two bright 'lungs' and a dark 'mediastinum' of varying
    geometry): predictable from context, so inpainting can be learned in a few steps."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, w = 0.5 + rng.uniform(-0.05, 0.05), rng.uniform(0.08, 0.14)
        img = 0.2 + 0.6 * np.exp(-((xx - cx + 0.25) ** 2 + (yy - 0.5) ** 2) / 0.04)
        img += 0.6 * np.exp(-((xx - cx - 0.25) ** 2 + (yy - 0.5) ** 2) / 0.04)
        img[np.abs(xx - cx) < w] *= 0.4
        out.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(out)


def _cfg(tmp_path: Path, epochs: int) -> TrainConfig:
    return replace(
        TrainConfig(seed=0, threads=2, run_dir=str(tmp_path / "run")),
        model=ModelConfig(input_size=64, width=0.5, dropout=0.0),
        pretrain=PretrainConfig(epochs=epochs, batch_size=8, learning_rate=3e-3,
                                warmup_epochs=0, patch=16, target_factor=4),
    )


def test_config_section_parses_and_rejects_typos() -> None:
    cfg = load_config(REPO / "configs" / "experiments-2.0" / "p-pretrain-inpaint.json")
    assert cfg.pretrain.epochs > 0 and 0 < cfg.pretrain.mask_ratio < 1
    assert config_from_dict({}).pretrain.epochs == 0  # off by default: older configs unchanged
    with pytest.raises(ValueError, match="mask_rate"):
        config_from_dict({"pretrain": {"mask_rate": 0.5}})
    with pytest.raises(ValueError, match="mask_ratio"):
        config_from_dict({"pretrain": {"mask_ratio": 1.0}})


def test_masked_dataset_masks_input_and_keeps_the_target(tmp_path: Path) -> None:
    from cxr_viewer.training.pretrain import make_pretrain_dataset

    imgs = _images(4)
    x, y = next(iter(make_pretrain_dataset(imgs, 4, 0, None, 0.5, 16, 4)))
    x, y = np.asarray(x), np.asarray(y)
    assert x.shape == (4, 64, 64, 1) and y.shape == (4, 16, 16, 2)
    mask = y[..., 1]
    assert set(np.unique(mask)) <= {0.0, 1.0} and 0 < mask.mean() < 1
    full_mask = np.repeat(np.repeat(mask, 4, axis=1), 4, axis=2)
    assert np.all(x[..., 0][full_mask == 1] == 0)  # masked squares are black in the input
    # the target is the unmasked image at 1/4 (batch order is shuffled: match by content)
    small = imgs.reshape(4, 16, 4, 16, 4).mean(axis=(2, 4)) / 255.0
    for t in y[..., 0]:
        assert min(np.abs(t - s).max() for s in small) < 1e-4


def test_pretraining_lowers_the_loss_and_transfers_the_encoder(tmp_path: Path) -> None:
    from cxr_viewer.training.measure import load_keras_model
    from cxr_viewer.training.models import CAM_LAYER, OUTPUT_LAYER, build_for_config
    from cxr_viewer.training.pretrain import run_pretraining, transfer_encoder
    from cxr_viewer.training.train import configure_tensorflow

    cfg = _cfg(tmp_path, epochs=12)
    configure_tensorflow(cfg)
    out = tmp_path / "pretrain"
    path = run_pretraining(cfg, _images(), out, log=False)
    assert path == out / "encoder.keras" and path.is_file()
    losses = [json.loads(line)["loss"] for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(losses) == 12
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:2]), losses
    # A second call reuses the saved encoder instead of training again.
    assert run_pretraining(cfg, _images(), out, log=False) == path
    assert len((out / "history.jsonl").read_text().splitlines()) == 12

    encoder = load_keras_model(path)
    fresh, _ = build_for_config(cfg)
    head_before = [w.copy() for w in fresh.get_layer(OUTPUT_LAYER).get_weights()]
    stem_before = fresh.get_layer("stem_conv1").get_weights()[0].copy()
    n = transfer_encoder(fresh, path)
    assert n == sum(1 for layer in encoder.layers if layer.get_weights())
    assert not np.allclose(stem_before, encoder.get_layer("stem_conv1").get_weights()[0])
    for layer in encoder.layers:
        for a, b in zip(layer.get_weights(), fresh.get_layer(layer.name).get_weights(),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(head_before, fresh.get_layer(OUTPUT_LAYER).get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the classifier head stays freshly initialised
    # Same features for the same input: the transferred encoder is the pretrained one.
    x = _images(2)[..., None].astype(np.float32) / 255.0
    import keras

    feats = keras.Model(fresh.inputs, fresh.get_layer(CAM_LAYER).output)
    np.testing.assert_allclose(feats.predict(x, verbose=0), encoder.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_transfer_refuses_an_encoder_of_another_width(tmp_path: Path) -> None:
    from cxr_viewer.training.models import build_for_config
    from cxr_viewer.training.pretrain import encoder_of, transfer_encoder

    cfg = _cfg(tmp_path, epochs=1)
    base, _ = build_for_config(cfg)
    encoder_of(base).save(tmp_path / "enc.keras")
    wide, _ = build_for_config(replace(cfg, model=replace(cfg.model, width=1.0)))
    with pytest.raises(ValueError, match="does not match"):
        transfer_encoder(wide, tmp_path / "enc.keras")
