"""ImageData -> model input, as the card describes it (no TensorFlow, no Qt).

The model sees what the radiologist sees by default: the 8-bit display rendering with the image's
default window preset (so a MONOCHROME1 image is inverted, a header window applied), then the
card's geometry (letterbox / stretch / crop to the input size), normalization and channel count.
The geometry :class:`~cxr_viewer.imaging.geometry.Transform` is kept so that heat maps can be
mapped back onto the original pixels.

Training should call :func:`display_to_input` on the same 8-bit renderings so that the model is
trained on exactly what it is later fed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxr_viewer.imaging.geometry import Transform, fit_transform
from cxr_viewer.inference.card import InputSpec
from cxr_viewer.io.types import ImageData

# ImageNet statistics (RGB) for the normalizations that pretrained backbones expect.
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


@dataclass(frozen=True)
class PreparedInput:
    """One image ready for the model.

    Attributes
    ----------
    image_id
        The ``ImageData.image_id`` it came from.
    batch
        float32, shape (1, height, width, channels).
    transform
        Original image -> model input geometry (invert it for heat maps).
    """

    image_id: str
    batch: np.ndarray
    transform: Transform

    @property
    def original_shape(self) -> tuple[int, int]:
        return self.transform.source_shape


def render_default_display(image: ImageData) -> np.ndarray:
    """8-bit display rendering of frame 0 with the image's default preset
    (``render_display(image, default_preset(image).resolve(image))``, what the viewer opens with).

    Parameters
    ----------
    image
        A loaded image.

    Returns
    -------
    np.ndarray
        uint8, (rows, cols), MONOCHROME1 / Presentation LUT already applied.
    """
    from cxr_viewer.imaging.presets import default_preset
    from cxr_viewer.imaging.render import DisplayRenderer

    # The LUT renderer gives render_display's bytes ~30x faster on integer data.
    return DisplayRenderer(image, cache_size=1).render(default_preset(image).resolve(image))


def normalize(pixels: np.ndarray, normalization: str, channels: int) -> np.ndarray:
    """8-bit values (rows, cols) -> float32 (rows, cols, channels) as the card says.

    Parameters
    ----------
    pixels
        uint8 (or float in 0..255) grayscale values.
    normalization
        ``unit`` (/255 -> [0, 1]), ``minus_one_one`` ([-1, 1]), ``imagenet_torch``
        (/255 then ImageNet mean/std per channel), ``imagenet_caffe`` (0..255 minus the BGR means).
    channels
        1 or 3 (the gray value replicated).

    Returns
    -------
    np.ndarray
        float32, (rows, cols, channels).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    x = np.asarray(pixels, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale array, got shape {x.shape}")
    x = np.repeat(x[..., np.newaxis], channels, axis=2)
    if normalization == "unit":
        return x / np.float32(255.0)
    if normalization == "minus_one_one":
        return x / np.float32(127.5) - np.float32(1.0)
    if normalization == "imagenet_torch":
        mean = _IMAGENET_MEAN if channels == 3 else _IMAGENET_MEAN.mean(keepdims=True)
        std = _IMAGENET_STD if channels == 3 else _IMAGENET_STD.mean(keepdims=True)
        return (x / np.float32(255.0) - mean) / std
    if normalization == "imagenet_caffe":
        mean = _CAFFE_MEAN_BGR if channels == 3 else _CAFFE_MEAN_BGR.mean(keepdims=True)
        return x - mean
    raise ValueError(f"unknown normalization {normalization!r}")


def display_to_input(display: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """An 8-bit display image -> one model input and the geometry used.

    Parameters
    ----------
    display
        uint8, (rows, cols).
    spec
        The card's input description.

    Returns
    -------
    tuple
        (float32 array (height, width, channels), Transform original -> input).
    """
    if display.dtype != np.uint8 or display.ndim != 2:
        raise ValueError(
            f"expected an 8-bit grayscale display image, got {display.dtype} {display.shape}"
        )
    transform = fit_transform(display.shape, (spec.height, spec.width), spec.resize)
    resized = transform.apply(display, pad_value=0)
    return normalize(resized, spec.normalization, spec.channels), transform


def prepare(image: ImageData, spec: InputSpec) -> PreparedInput:
    """Render, resize and normalize an image for the model.

    Parameters
    ----------
    image
        A loaded image (frame 0 is analysed).
    spec
        The card's input description.

    Returns
    -------
    PreparedInput
    """
    display = render_default_display(image)
    if tuple(display.shape) != tuple(image.shape):
        raise ValueError(f"display rendering is {display.shape}, image is {image.shape}")
    x, transform = display_to_input(display, spec)
    return PreparedInput(image.image_id, x[np.newaxis], transform)
