"""Class activation maps: the fast all-label Grad-CAM, and tf-keras-vis for the other methods.

Fast path ("gradcam"): one forward pass and one vectorised backward pass give every label's map.
A ``tf.function`` takes the jacobian of the (pre-sigmoid) outputs with respect to the target conv
layer's activations (``tape.batch_jacobian``, shape labels x h x w x channels); the Grad-CAM weight
of a channel is the spatial mean of its gradient, the map is ReLU(sum of weighted activations),
normalised per label by its maximum (0 = no attention).  This equals tf-keras-vis ``Gradcam`` with
``ReplaceToLinear`` label by label (a test pins it) at a fraction of the cost.

The other methods ("gradcam++", "scorecam", "saliency") call tf-keras-vis, with one visualizer per
model built on first use and reused.  A model without a convolutional layer has no Grad-CAM: every
method falls back to gradient saliency with SmoothGrad, and the result says so.

TensorFlow, keras and tf-keras-vis are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from cxr_viewer.errors import ModelError
from cxr_viewer.imaging.geometry import Transform

METHODS = ("gradcam", "gradcam++", "scorecam", "saliency")
SALIENCY_FALLBACK_NOTE = "no convolutional layer: gradient saliency (SmoothGrad), not Grad-CAM"
MIN_CAM_SPATIAL = 4  # an automatically chosen layer must be at least 4x4 (1x1 maps say nothing)
SMOOTHGRAD_SAMPLES = 10  # eager tf-keras-vis: ~0.8 s per sample on a DenseNet121 here
SMOOTHGRAD_NOISE = 0.15
SCORECAM_MAX_N = 32  # Faster-ScoreCAM: the 32 most variable channels


# ---- maps at the original size, computed on demand -------------------------------------------
class CamMaps(Mapping[str, np.ndarray]):
    """finding -> float32 [0, 1] map at the ORIGINAL image size, computed when first read.

    Each map peaks at 1 (unless all zero): 1 is the finding's strongest attention in the image.

    Fourteen full-size float maps of a 3000 x 2500 radiograph would take 420 MB; this keeps the
    small maps (the conv layer's or the model input's grid) and maps one back through the
    preprocessing geometry when it is read (~10 ms), remembering the last few.

    Parameters
    ----------
    low_res
        finding -> 2-D map in [0, 1] on the model input grid (any resolution).
    transform
        The preprocessing geometry (original -> model input).
    keep
        How many full-size maps to remember.
    """

    def __init__(
        self, low_res: Mapping[str, np.ndarray], transform: Transform, keep: int = 4
    ) -> None:
        self._low = dict(low_res)
        self.transform = transform
        self._keep = keep
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, finding: str) -> np.ndarray:
        with self._lock:
            hit = self._cache.get(finding)
            if hit is not None:
                self._cache.move_to_end(finding)
                return hit
        full = self.transform.invert_map(self._low[finding])
        np.clip(full, 0.0, None, out=full)
        peak = float(full.max()) if full.size else 0.0
        if peak > 0.0:  # resampling can lower the peak: 1 stays "strongest in this image"
            full *= np.float32(1.0 / peak)
        full.setflags(write=False)
        with self._lock:
            self._cache[finding] = full
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return full

    def __iter__(self) -> Iterator[str]:
        return iter(self._low)

    def __len__(self) -> int:
        return len(self._low)

    def low_res(self, finding: str) -> np.ndarray:
        """The map on the model grid (before the geometry is undone)."""
        return self._low[finding]

    @property
    def original_shape(self) -> tuple[int, int]:
        return self.transform.source_shape


def merge_cam_maps(
    old: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]
) -> Mapping[str, np.ndarray]:
    """Maps of one image computed in two goes (e.g. a slow method, one finding at a time).

    Two :class:`CamMaps` of the same geometry stay lazy; anything else becomes a plain dict.
    ``new`` wins where both have a finding.
    """
    if isinstance(old, CamMaps) and isinstance(new, CamMaps) and old.transform == new.transform:
        low = {f: old.low_res(f) for f in old}
        low.update({f: new.low_res(f) for f in new})
        return CamMaps(low, new.transform, keep=new._keep)
    merged = dict(old)
    merged.update(new)
    return merged


def normalize_max(cams: np.ndarray) -> np.ndarray:
    """ReLU, then divide each map (first axis) by its maximum; all-zero maps stay zero.

    Parameters
    ----------
    cams
        (n, rows, cols) raw maps.

    Returns
    -------
    np.ndarray
        float32 in [0, 1], same shape.
    """
    cams = np.maximum(np.asarray(cams, dtype=np.float32), 0.0)
    if not np.all(np.isfinite(cams)):
        raise ValueError("class activation map contains NaN or infinity")
    peak = cams.reshape(cams.shape[0], -1).max(axis=1)
    scale = np.where(peak > 0, 1.0 / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)
    return cams * scale[:, None, None]


# ---- layer choice ---------------------------------------------------------------------------
def _is_conv_like(layer: Any) -> bool:
    if "Conv" in type(layer).__name__:
        return True
    sub = getattr(layer, "layers", None)  # a nested model used as a backbone
    return bool(sub) and any(_is_conv_like(x) for x in sub)


def _spatial(layer: Any) -> tuple[int | None, int | None] | None:
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None
    if len(shape) != 4:
        return None
    return shape[1], shape[2]


def find_cam_layer(model: Any, name: str | None, source: str = "model") -> str | None:
    """Name of the Grad-CAM target layer, validated; None when the model has no conv layer.

    Parameters
    ----------
    model
        A keras model.
    name
        The card's ``gradcam_layer``; when given it must exist and output a 4-D map larger than
        1x1.  When None, the last layer with a 4-D output of at least 4x4 at or after the first
        convolutional layer (the feature map the head pools; never an automatic 1x1 layer).
    source
        Names the model in errors.

    Returns
    -------
    str or None
    """
    if name:
        try:
            layer = model.get_layer(name)
        except ValueError:
            raise ModelError(source, f"Grad-CAM layer {name!r} is not a layer of the model") from None
        spatial = _spatial(layer)
        if spatial is None:
            raise ModelError(source, f"Grad-CAM layer {name!r} does not output a 4-D feature map")
        if None not in spatial and spatial[0] * spatial[1] <= 1:
            raise ModelError(source, f"Grad-CAM layer {name!r} is {spatial[0]}x{spatial[1]}: too small")
        return str(name)
    seen_conv = False
    chosen = None
    for layer in model.layers:
        seen_conv = seen_conv or _is_conv_like(layer)
        if not seen_conv:
            continue
        spatial = _spatial(layer)
        if spatial is None or None in spatial:
            continue
        if min(spatial) >= MIN_CAM_SPATIAL:  # type: ignore[type-var]
            chosen = layer.name
    return chosen


def output_layer(model: Any) -> Any:
    """The layer producing the model's (single) output."""
    names = getattr(model, "output_names", None)
    if names:
        with contextlib.suppress(ValueError):
            return model.get_layer(names[0])
    return model.layers[-1]


def linear_clone(model: Any) -> Any:
    """A copy of ``model`` whose output activation is linear (logits), sharing no state.

    Gradients of a saturated sigmoid are exactly 0 in float32; the logits keep them.
    """
    import keras

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    layer = output_layer(clone)
    if hasattr(layer, "activation"):
        layer.activation = keras.activations.linear
    return clone


@contextlib.contextmanager
def _quiet_tf_keras_vis() -> Iterator[None]:
    # tf-keras-vis imports a scipy name that warns, and Score-CAM prints a keras progress bar.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        # keras: "The structure of `inputs` doesn't match" when tf-keras-vis passes a list
        warnings.filterwarnings("ignore", category=UserWarning, module="keras")
        with contextlib.redirect_stdout(io.StringIO()):
            yield


# ---- the engine ------------------------------------------------------------------------------
class CamEngine:
    """Heat maps for one model; built once per loaded model, traced on first use or warm-up.

    Parameters
    ----------
    model
        The loaded keras model (sigmoid outputs).
    layer
        Validated Grad-CAM target layer name, or None (saliency fallback).
    input_shape
        (height, width, channels) of the model input.
    """

    def __init__(self, model: Any, layer: str | None, input_shape: tuple[int, int, int]) -> None:
        self.model = model
        self.layer = layer
        self.input_shape = tuple(input_shape)
        self._fast: Any = None
        self._linear: Any = None
        self._visualizers: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def has_gradcam(self) -> bool:
        return self.layer is not None

    def _logits_model(self) -> tuple[Any, Any, bool]:
        """(model: input -> [features, pre-head tensor], head: pre-head -> scores, whether the
        scores are logits).

        A Dense or Activation sigmoid output is undone in place (no copy of the weights; cloning
        a DenseNet also stalls the GUI thread for ~0.4 s); any other head gets a clone whose
        output activation is made linear when it has one, else its probabilities are used
        (the same maps after normalisation, unless the sigmoid saturates).
        """
        import keras

        model = self.model
        features = model.get_layer(self.layer).output
        out_layer = output_layer(model)
        activation = getattr(getattr(out_layer, "activation", None), "__name__", "")
        kind = type(out_layer).__name__
        if activation == "sigmoid" and kind in ("Dense", "Activation"):
            pre = out_layer.input
            if kind == "Activation":
                return keras.Model(model.inputs, [features, pre]), lambda t: t, True

            def dense_logits(t: Any) -> Any:
                z = keras.ops.matmul(t, out_layer.kernel)
                return z + out_layer.bias if out_layer.use_bias else z

            return keras.Model(model.inputs, [features, pre]), dense_logits, True
        if self._linear is None:
            self._linear = linear_clone(model)
        linear = self._linear
        outputs = [linear.get_layer(self.layer).output, linear.outputs[0]]
        logits = hasattr(output_layer(linear), "activation")
        return keras.Model(linear.inputs, outputs), lambda t: t, logits

    def _fast_fn(self) -> Any:
        with self._lock:
            if self._fast is None:
                self._fast = self._build_fast()
            return self._fast

    def _build_fast(self) -> Any:
        import tensorflow as tf

        grad_model, head, are_logits = self._logits_model()
        spec = tf.TensorSpec((1, *self.input_shape), tf.float32)

        @tf.function(input_signature=[spec])
        def all_label_gradcam(x: Any) -> Any:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(x)
                features, pre = grad_model(x, training=False)
                scores = head(pre)  # logits, or probabilities for an unusual head
            jac = tape.batch_jacobian(scores, features)  # (1, labels, h, w, c)
            weights = tf.reduce_mean(jac, axis=[2, 3])  # (1, labels, c)
            cams = tf.einsum("bhwc,blc->blhw", features, weights)
            probs = tf.sigmoid(scores) if are_logits else scores
            return tf.nn.relu(cams)[0], probs[0]

        return all_label_gradcam

    def warm_up(self) -> None:
        """Trace the fast Grad-CAM graph (seconds for a DenseNet) so the first image is quick."""
        if self.has_gradcam:
            self.gradcam_all(np.zeros((1, *self.input_shape), dtype=np.float32))

    def gradcam_all(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (ReLU, not normalised) Grad-CAMs of every output, and the probabilities.

        Parameters
        ----------
        batch
            float32, (1, height, width, channels).

        Returns
        -------
        tuple
            (maps (labels, h, w) float32 at the layer's grid, probabilities (labels,)).
        """
        if not self.has_gradcam:
            raise ModelError("model", "no convolutional layer for Grad-CAM")
        cams, probs = self._fast_fn()(np.asarray(batch, dtype=np.float32))
        return cams.numpy(), probs.numpy()

    def _visualizer(self, method: str) -> Any:
        with self._lock:
            vis = self._visualizers.get(method)
            if vis is not None:
                return vis
            with _quiet_tf_keras_vis():
                from tf_keras_vis.gradcam import Gradcam
                from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
                from tf_keras_vis.saliency import Saliency
                from tf_keras_vis.scorecam import Scorecam
                from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

            if method == "scorecam":  # tf-keras-vis: no ReplaceToLinear for Score-CAM
                vis = Scorecam(self.model)
            else:
                cls = {"gradcam": Gradcam, "gradcam++": GradcamPlusPlus, "saliency": Saliency}[
                    method
                ]
                vis = cls(self.model, model_modifier=ReplaceToLinear(), clone=True)
            self._visualizers[method] = vis
            return vis

    def tf_keras_vis_maps(
        self, method: str, batch: np.ndarray, indices: Sequence[int]
    ) -> np.ndarray:
        """Maps of ``method`` for the given output indices, via tf-keras-vis.

        Parameters
        ----------
        method
            ``gradcam`` (the reference, one call per label), ``gradcam++``, ``scorecam`` or
            ``saliency`` (SmoothGrad).
        batch
            float32, (1, height, width, channels).
        indices
            Output indices.

        Returns
        -------
        np.ndarray
            float32 (len(indices), rows, cols) in [0, 1] (max-normalised); the conv layer's grid
            for the CAM methods, the input grid for saliency.
        """
        if method not in METHODS:
            raise ValueError(f"unknown heat-map method {method!r} (one of {', '.join(METHODS)})")
        if method != "saliency" and not self.has_gradcam:
            raise ModelError("model", f"{method} needs a convolutional layer")
        indices = list(indices)
        if not indices:
            return np.zeros((0, 1, 1), dtype=np.float32)
        vis = self._visualizer(method)
        batch = np.asarray(batch, dtype=np.float32)
        with _quiet_tf_keras_vis():
            from tf_keras_vis.utils.scores import CategoricalScore

            if method == "saliency":
                # every label at once: one copy of the image per label
                seeds = np.repeat(batch, len(indices), axis=0)
                maps = vis(
                    CategoricalScore(indices),
                    seeds,
                    smooth_samples=SMOOTHGRAD_SAMPLES,
                    smooth_noise=SMOOTHGRAD_NOISE,
                    normalize_map=False,
                )
                return normalize_max(np.asarray(maps))
            out = []
            for i in indices:
                kwargs: dict[str, Any] = {
                    "penultimate_layer": self.layer,
                    "seek_penultimate_conv_layer": False,
                    "expand_cam": False,
                    "normalize_cam": False,
                }
                if method == "scorecam":
                    channels = int(self.model.get_layer(self.layer).output.shape[-1])
                    kwargs["max_N"] = min(SCORECAM_MAX_N, channels)
                out.append(np.asarray(vis(CategoricalScore(i), batch, **kwargs))[0])
            return normalize_max(np.stack(out))
