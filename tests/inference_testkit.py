"""Tiny models, bundles and images for the inference, CLI and analysis-UI tests.

The models are built here (a few KB, 32-64 px inputs); nothing depends on models/default.
Keras is imported inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.inference.card import InputSpec, LabelSpec, ModelCard
from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.io.types import ImageData


def cam_model(size: int = 48, channels: int = 1, outputs: int = 14, seed: int = 0) -> Any:
    """Conv -> pool -> conv "cam_features" (size/2) -> GAP -> Dense(outputs, sigmoid)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="cam_features")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(outputs, activation="sigmoid", name="predictions")(x)
    return keras.Model(inp, out)


def brightness_model(size: int = 64, pool: int = 4, outputs: int = 14) -> Any:
    """A model whose Grad-CAM is the (pooled) input brightness, for every output.

    avg-pool -> 1x1 conv "cam_features" (weight 1, linear) -> GAP -> Dense(positive weights):
    d(logit)/d(feature) is a positive constant, so each label's Grad-CAM is the pooled image.
    """
    import keras

    inp = keras.Input((size, size, 1), name="image")
    x = keras.layers.AveragePooling2D(pool)(inp)
    x = keras.layers.Conv2D(
        1, 1, use_bias=False, kernel_initializer="ones", name="cam_features"
    )(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    weights = np.linspace(0.5, 2.0, outputs, dtype=np.float32)[np.newaxis]
    out = keras.layers.Dense(
        outputs,
        activation="sigmoid",
        kernel_initializer=keras.initializers.Constant(weights),
        bias_initializer="zeros",
        name="predictions",
    )(x)
    return keras.Model(inp, out)


def seed_h5_model(seed: int = 0) -> Any:
    """The seed project's final architecture: 256x256x1 -> Flatten -> 64 -> 256 -> 15 sigmoid."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((256, 256, 1))
    x = keras.layers.Flatten()(inp)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dense(256, activation="relu")(x)
    out = keras.layers.Dense(15, activation="sigmoid")(x)
    return keras.Model(inp, out)


def vindr_card(
    size: int = 48,
    channels: int = 1,
    findings: tuple[str, ...] = VINDR_FINDINGS,
    gradcam_layer: str | None = "cam_features",
    resize: str = "letterbox",
    thresholds: float | tuple[float, ...] = 0.5,
    extra_labels: tuple[str, ...] = (),
    no_finding: bool = False,
) -> ModelCard:
    """Card whose outputs are ``findings`` (then extras, then "No finding" when asked)."""
    if isinstance(thresholds, float):
        thresholds = (thresholds,) * len(findings)
    labels = [LabelSpec(f, f, t) for f, t in zip(findings, thresholds, strict=True)]
    labels += [LabelSpec(name, None, 0.5) for name in extra_labels]
    if no_finding:
        labels.append(LabelSpec(NO_FINDING, NO_FINDING, 0.5))
    return ModelCard(
        name="Tiny test model",
        version="0.0.1",
        architecture="test",
        labels=tuple(labels),
        input=InputSpec(height=size, width=size, channels=channels, resize=resize),
        gradcam_layer=gradcam_layer,
    )


def write_bundle(folder: Path, model: Any, card: ModelCard, weights: str = "model.keras") -> Path:
    """Save ``model`` and ``card`` (with the real SHA-256) as a bundle folder."""
    import dataclasses

    from cxr_viewer.inference.bundle import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / weights)
    card = dataclasses.replace(card, weights=weights, weights_sha256=sha256_file(folder / weights))
    card.save(folder / "model.json")
    return folder


def gray_image(pixels: np.ndarray, photometric: str = "MONOCHROME2", path: str = "synthetic") -> ImageData:
    """An ImageData around a 2-D array (no header window: the default preset is min-max)."""
    frames = np.ascontiguousarray(pixels[np.newaxis])
    frames.setflags(write=False)
    bits = 8 if frames.dtype == np.uint8 else 16
    return ImageData(
        path=path,
        frames=frames,
        photometric=photometric,
        bits_stored=bits,
        source_format="PNG",
        modality="OT",
    )


def blob_image(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    """uint16 dark image with one bright disc (and a faint ramp so the min-max window is fixed)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    disc = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    out = np.full(shape, 100, dtype=np.uint16)
    out[disc] = 4000
    out[0, 0] = 0
    return out
