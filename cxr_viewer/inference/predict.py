"""Model outputs -> :class:`~cxr_viewer.inference.results.Prediction` (all 14 VinDr-CXR findings).

The model call itself is a ``tf.function`` with a fixed input signature (traced once; eager
execution of a DenseNet is ~13x slower).  TensorFlow is imported inside functions only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.card import ModelCard
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import FindingScore, Prediction


def make_predict_fn(model: Any, input_shape: tuple[int, int, int]) -> Any:
    """Wrap ``model`` in a ``tf.function`` taking float32 (batch, height, width, channels).

    Parameters
    ----------
    model
        A keras model.
    input_shape
        (height, width, channels).

    Returns
    -------
    callable
        ``fn(batch) -> tf.Tensor`` of shape (batch, labels).
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *input_shape), tf.float32)

    @tf.function(input_signature=[spec])
    def predict(x: Any) -> Any:
        return model(x, training=False)

    return predict


def tta_batch(batch: np.ndarray, tta: list[list[float]] | tuple[Any, ...]) -> np.ndarray:
    """Test-time augmentation copies of a (1, H, W, C) model input: one per ``(scale, dx, dy)``
    (zoom about the centre, then a shift as a fraction of the side; outside pixels 0 as in the
    letterbox). No flips: chest anatomy is lateralised. Returns (len(tta), H, W, C) float32."""
    import cv2

    x = np.asarray(batch, np.float32)[0]
    h, w = x.shape[:2]
    out = []
    for scale, dx, dy in tta:
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 0.0, float(scale))
        m[0, 2] += float(dx) * w
        m[1, 2] += float(dy) * h
        warped = cv2.warpAffine(x, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        out.append(warped.reshape(x.shape))
    return np.stack(out).astype(np.float32)


def average_tta(probs: np.ndarray) -> np.ndarray:
    """Mean of the copies' logits -> one probability vector (labels,)."""
    from cxr_viewer.inference.operating import logit, sigmoid

    return sigmoid(np.mean(logit(np.asarray(probs, np.float64)), axis=0))


def check_probabilities(probs: np.ndarray, card: ModelCard, source: str) -> np.ndarray:
    """Refuse outputs that are not probabilities of the card's labels.

    Parameters
    ----------
    probs
        One image's outputs.
    card
        The model card.
    source
        Names the model in errors.

    Returns
    -------
    np.ndarray
        float64 (labels,).
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if probs.shape[0] != len(card.labels):
        raise ModelError(source, f"model returned {probs.shape[0]} outputs, the card lists "
                         f"{len(card.labels)}")
    if not np.all(np.isfinite(probs)):
        raise ModelError(source, "model returned NaN or infinite outputs")
    if probs.min() < 0.0 or probs.max() > 1.0:
        raise ModelError(
            source,
            f"model outputs span [{probs.min():.3g}, {probs.max():.3g}], not probabilities "
            "(the card says sigmoid)",
        )
    return probs


def build_prediction(
    card: ModelCard,
    probs: np.ndarray,
    image_id: str,
    source: str = "model",
    mode: str | None = None,
) -> Prediction:
    """Assemble a Prediction from one image's outputs, as the card maps them.

    Parameters
    ----------
    card
        The model card (labels, findings, thresholds).
    probs
        Sigmoid outputs, one per card label.
    image_id
        The analysed image's id.
    source
        Names the model in errors.
    mode
        Operating mode (``inference.operating.MODES``); None: the card's default. Ignored (and
        ``Prediction.mode`` None) when the card has no operating points.

    Returns
    -------
    Prediction
        Every VinDr-CXR finding in order: calibrated probability and the mode's threshold, or
        None when the model does not score it; ``no_finding``; ``abnormal`` (1 - P(No finding));
        extras (outputs not mapped to a VinDr-CXR finding).
    """
    probs = card.calibrate(check_probabilities(probs, card, source))
    active = card.resolve_mode(mode)
    thresholds = card.thresholds(active)
    scores = []
    for finding in VINDR_FINDINGS:
        index = card.index_of_finding(finding)
        if index is None:
            scores.append(FindingScore(finding, None, None, False))
            continue
        p = float(probs[index])
        threshold = float(thresholds[index])
        scores.append(FindingScore(finding, p, threshold, p >= threshold))
    nf = card.no_finding_index
    extras = {lab.name: float(probs[i]) for i, lab in enumerate(card.labels) if lab.finding is None}
    return Prediction(
        image_id=image_id,
        model_name=card.name,
        model_version=card.version,
        weights_sha256=card.weights_sha256,
        scores=tuple(scores),
        no_finding=None if nf is None else float(probs[nf]),
        extras=extras,
        abnormal=card.abnormal_score(probs),
        abnormal_threshold=card.abnormal_threshold(active),
        mode=active,
        operating_note=card.operating_note,
        calibrated=bool(card.calibration),
    )


def apply_mode(card: ModelCard, prediction: Prediction, mode: str | None) -> Prediction:
    """The same (calibrated) probabilities flagged at another operating mode's thresholds, without
    running the model again (the panel's mode selector). A card without operating points
    returns the prediction unchanged."""
    import dataclasses

    active = card.resolve_mode(mode)
    if active is None or active == prediction.mode:
        return prediction
    thresholds = card.thresholds(active)
    scores = []
    for s in prediction.scores:
        index = card.index_of_finding(s.finding)
        if index is None or s.probability is None:
            scores.append(s)
            continue
        t = float(thresholds[index])
        scores.append(dataclasses.replace(s, threshold=t, flagged=s.probability >= t))
    return dataclasses.replace(
        prediction,
        scores=tuple(scores),
        mode=active,
        abnormal_threshold=card.abnormal_threshold(active),
    )
