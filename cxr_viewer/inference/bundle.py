"""Model bundles: load, verify and run a model with its card.

A bundle is a folder holding ``model.json`` (the :class:`~cxr_viewer.inference.card.ModelCard`)
and the weights it names (``model.keras``, or a legacy ``.h5``).  Loading refuses, with a
:class:`~cxr_viewer.errors.ModelError` naming the file and the cause:

- a card that is missing, invalid, or names weights outside the folder;
- weights whose SHA-256 differs from the card's (or a card without one);
- a model that could run code when loaded (a ``Lambda`` layer; Keras ``safe_mode=True``);
- input / output shapes that differ from the card, an output that is not sigmoid;
- a Grad-CAM layer that does not exist or is not a >1x1 feature map.

A bare ``.keras`` / ``.h5`` file loads with :func:`load_model_file` and a card preset (e.g.
:func:`card_preset_seed_h5` for the seed project's format).  TensorFlow and keras are imported
inside functions only; TensorFlow is limited to 2 threads unless ``CXR_VIEWER_TF_THREADS`` says
otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxr_viewer.errors import ModelError
from cxr_viewer.inference.applicability import assess
from cxr_viewer.inference.card import InputSpec, LabelSpec, ModelCard
from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.inference.gradcam import (
    METHODS,
    SALIENCY_FALLBACK_NOTE,
    CamEngine,
    CamMaps,
    find_cam_layer,
    normalize_max,
    output_layer,
)
from cxr_viewer.inference.predict import build_prediction, check_probabilities, make_predict_fn
from cxr_viewer.inference.preprocess import PreparedInput, prepare
from cxr_viewer.inference.results import CamResult, Prediction
from cxr_viewer.inference.tfthread import check_tf_thread
from cxr_viewer.io.types import ImageData

CARD_FILE = "model.json"
WEIGHT_SUFFIXES = (".keras", ".h5", ".hdf5")
UNSAFE_LAYERS = frozenset({"Lambda", "TFOpLambda", "SlicingOpLambda"})

_tf_configured = False
_tf_lock = threading.Lock()


def configure_tensorflow(threads: int | None = None) -> None:
    """Limit TensorFlow's thread pools (once, before its runtime starts).

    Parameters
    ----------
    threads
        Intra- and inter-op threads; default ``CXR_VIEWER_TF_THREADS`` or 2.
    """
    global _tf_configured
    with _tf_lock:
        if _tf_configured:
            return
        import tensorflow as tf

        n = threads or int(os.environ.get("CXR_VIEWER_TF_THREADS", "2"))
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:
            pass  # the runtime already started (e.g. training in the same process): keep it
        _tf_configured = True


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---- card presets --------------------------------------------------------------------------
def card_preset_seed_h5(weights: str = "model.h5", weights_sha256: str = "") -> ModelCard:
    """Card for the seed project's models: Keras ``.h5``, 256x256x1 in [0, 1], 15 sigmoid outputs.

    Outputs are in VinBigData class-id order: 0..13 the VinDr-CXR findings, 14 "No finding".
    Its final model was Flatten -> Dense(64) -> Dense(256) -> Dense(15): no convolutional
    layer, so heat maps fall back to gradient saliency.  Thresholds are 0.5 (the seed project
    published no operating points).
    """
    labels = tuple(LabelSpec(name=f, finding=f, threshold=0.5) for f in VINDR_FINDINGS) + (
        LabelSpec(name=NO_FINDING, finding=NO_FINDING, threshold=0.5),
    )
    return ModelCard(
        name="Seed project model",
        version="h5",
        architecture="Flatten -> Dense(64) -> Dense(256) -> Dense(15)",
        labels=labels,
        input=InputSpec(height=256, width=256, channels=1, normalization="unit", resize="stretch"),
        weights=weights,
        weights_sha256=weights_sha256,
        gradcam_layer=None,
        training_data="VinDr-CXR (VinBigData) training labels",
        notes="Card preset for a bare seed-project .h5 file; thresholds are the 0.5 default.",
    )


CARD_PRESETS = {"seed-h5": card_preset_seed_h5}


# ---- safety scan ---------------------------------------------------------------------------
def _walk_class_names(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        name = node.get("class_name")
        if isinstance(name, str):
            yield name
        for value in node.values():
            yield from _walk_class_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_class_names(value)


def _read_model_config(weights: Path) -> Any:
    """The architecture JSON stored in a .keras (zip) or .h5 file, without building the model."""
    try:
        if weights.suffix == ".keras":
            with zipfile.ZipFile(weights) as zf:
                return json.loads(zf.read("config.json"))
        import h5py

        with h5py.File(weights, "r") as fh:
            raw = fh.attrs.get("model_config")
            if raw is None:
                raise ModelError(str(weights), "holds weights only, no model architecture")
            return json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except ModelError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(str(weights), f"not a readable Keras model file ({exc})") from exc


def check_model_config_safe(weights: str | Path) -> None:
    """Refuse a model file whose architecture holds a layer that runs arbitrary Python code."""
    weights = Path(weights)
    unsafe = sorted(set(_walk_class_names(_read_model_config(weights))) & UNSAFE_LAYERS)
    if unsafe:
        raise ModelError(
            str(weights),
            f"contains a {unsafe[0]} layer (arbitrary Python code); refused, as Keras safe_mode does",
        )


# ---- loading -------------------------------------------------------------------------------
def _keras_load(weights: Path) -> Any:
    import keras

    configure_tensorflow()
    check_model_config_safe(weights)
    try:
        return keras.models.load_model(str(weights), safe_mode=True, compile=False)
    except Exception as exc:  # keras raises ValueError, TypeError, OSError... for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ModelError(str(weights), f"refused by Keras safe_mode: {first}") from exc
        raise ModelError(str(weights), f"Keras could not load the model: {first}") from exc


def _validate_model(model: Any, card: ModelCard, source: str) -> None:
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(source, f"model has {len(inputs)} inputs and {len(outputs)} outputs; "
                         "one of each expected")
    got = tuple(inputs[0].shape)[1:]
    want = (card.input.height, card.input.width, card.input.channels)
    if len(got) != 3 or any(g is not None and g != w for g, w in zip(got, want, strict=True)):
        raise ModelError(source, f"model input is {got}, the card says {want} (height, width, "
                         "channels)")
    if got[2] is None:
        raise ModelError(source, "model input has an undefined channel count")
    out = tuple(outputs[0].shape)[1:]
    if out != (len(card.labels),):
        raise ModelError(source, f"model output is {out}, the card lists {len(card.labels)} labels")
    layer = output_layer(model)
    activation = getattr(layer, "activation", None)
    if activation is not None:
        act_name = getattr(activation, "__name__", str(activation))
        if act_name != "sigmoid":
            raise ModelError(source, f"output layer {layer.name!r} has activation {act_name!r}; "
                             "the card says sigmoid")


class ModelBundle:
    """A loaded, verified model with its card: probabilities and heat maps for an image.

    Use :func:`load_bundle` or :func:`load_model_file`.  Thread use: one analysis at a time
    (the viewer runs them in one worker); methods hold no Qt.
    """

    def __init__(self, card: ModelCard, model: Any, path: Path) -> None:
        self.card = card
        self.model = model
        self.path = path
        self.source = str(path)
        shape = (card.input.height, card.input.width, card.input.channels)
        self.input_shape: tuple[int, int, int] = shape
        self.cam_layer = find_cam_layer(model, card.gradcam_layer, self.source)
        self.engine = CamEngine(model, self.cam_layer, shape)
        self._predict_fn = make_predict_fn(model, shape)
        self._prepared: PreparedInput | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ModelBundle({self.card.name!r} {self.card.version!r}, {self.source!r})"

    # ---- inputs --------------------------------------------------------------------------
    def prepare(self, image: ImageData) -> PreparedInput:
        """Preprocess (render, resize, normalize) an image; the last one is remembered so that
        ``predict`` then ``cams`` render it once."""
        with self._lock:
            cached = self._prepared
        if cached is not None and cached.image_id == image.image_id:
            return cached
        assess(image)  # heat maps too are refused for an image the model is not meant for
        prepared = prepare(image, self.card.input)
        with self._lock:
            self._prepared = prepared
        return prepared

    # ---- probabilities -------------------------------------------------------------------
    def predict_batch(self, batch: np.ndarray) -> np.ndarray:
        """Raw sigmoid outputs for a float32 (n, height, width, channels) batch -> (n, labels)."""
        check_tf_thread("ModelBundle.predict_batch")
        out = self._predict_fn(np.asarray(batch, dtype=np.float32)).numpy()
        for row in out:
            check_probabilities(row, self.card, self.source)
        return out

    def predict(self, image: ImageData) -> Prediction:
        """All 14 VinDr-CXR findings for an image (frame 0).

        Parameters
        ----------
        image
            A loaded image.

        Returns
        -------
        Prediction
        """
        warnings = assess(image)  # raises NotApplicable for a non-chest / non-frontal image
        prepared = self.prepare(image)
        probs = self.predict_batch(prepared.batch)[0]
        prediction = build_prediction(self.card, probs, image.image_id, self.source)
        return dataclasses.replace(prediction, warnings=warnings) if warnings else prediction

    # ---- heat maps -----------------------------------------------------------------------
    def _indices(self, findings: Sequence[str] | None) -> dict[str, int]:
        wanted = self.card.scored_findings if findings is None else tuple(findings)
        out: dict[str, int] = {}
        for finding in wanted:
            index = self.card.index_of_finding(finding)
            if index is None or finding == NO_FINDING:
                raise ValueError(f"{finding!r} is not scored by {self.card.name} {self.card.version}")
            out[finding] = index
        return out

    def cams(
        self,
        image: ImageData,
        findings: Sequence[str] | None = None,
        method: str = "gradcam",
    ) -> CamResult:
        """Heat maps at the ORIGINAL image size (float32, [0, 1]) for scored findings.

        Parameters
        ----------
        image
            A loaded image.
        findings
            VinDr-CXR findings (default: every finding the model scores).
        method
            ``gradcam`` (fast, all labels in one pass), ``gradcam++``, ``scorecam``, or
            ``saliency``.  A model without a conv layer always gets saliency; ``note`` says so.

        Returns
        -------
        CamResult
            ``maps`` computes each full-size map when first read (see :class:`CamMaps`).
        """
        check_tf_thread("ModelBundle.cams")
        if method not in METHODS:
            raise ValueError(f"unknown heat-map method {method!r} (one of {', '.join(METHODS)})")
        indices = self._indices(findings)
        prepared = self.prepare(image)
        note = ""
        if not self.engine.has_gradcam:
            method, note = "saliency", SALIENCY_FALLBACK_NOTE
        if method == "gradcam":
            raw, _ = self.engine.gradcam_all(prepared.batch)
            low = normalize_max(raw[list(indices.values())])
        else:
            low = self.engine.tf_keras_vis_maps(method, prepared.batch, list(indices.values()))
        maps = CamMaps(dict(zip(indices, low, strict=True)), prepared.transform)
        return CamResult(image_id=image.image_id, method=method, maps=maps, note=note)

    def warm_up(self, cams: bool = True) -> None:
        """Trace the prediction graph and, with ``cams``, the fast Grad-CAM graph (seconds for a
        DenseNet): call it in the background right after loading."""
        check_tf_thread("ModelBundle.warm_up")
        zeros = np.zeros((1, *self.input_shape), dtype=np.float32)
        self._predict_fn(zeros)
        if cams:
            self.engine.warm_up()


def _bundle_from(weights: Path, card: ModelCard, source: Path) -> ModelBundle:
    model = _keras_load(weights)
    _validate_model(model, card, str(weights))
    return ModelBundle(card, model, source)


def load_bundle(path: str | Path) -> ModelBundle:
    """Load and verify a model bundle folder (``model.json`` + the weights it names).

    Parameters
    ----------
    path
        The bundle folder.

    Returns
    -------
    ModelBundle

    Raises
    ------
    ModelError
        On any problem, naming the file and the cause.
    """
    folder = Path(path)
    if not folder.exists():
        raise ModelError(str(folder), "model bundle not found")
    if not folder.is_dir():
        raise ModelError(str(folder), "not a bundle folder (load a bare .keras/.h5 file with "
                         "load_model_file and a card preset)")
    card = ModelCard.load(folder / CARD_FILE)
    card_path = str(folder / CARD_FILE)
    if Path(card.weights).name != card.weights or card.weights in ("", ".", ".."):
        raise ModelError(card_path, f"weights {card.weights!r} must be a file name in the bundle")
    weights = folder / card.weights
    if weights.suffix not in WEIGHT_SUFFIXES:
        raise ModelError(card_path, f"weights {card.weights!r}: unsupported format (expected "
                         f"{', '.join(WEIGHT_SUFFIXES)})")
    if not weights.is_file():
        raise ModelError(str(weights), "weights file named by the card is missing")
    if not card.weights_sha256:
        raise ModelError(card_path, "the card has no weights_sha256; refusing unverified weights")
    digest = sha256_file(weights)
    if digest.lower() != card.weights_sha256.lower():
        raise ModelError(str(weights), f"SHA-256 {digest[:12]}... differs from the card's "
                         f"{card.weights_sha256[:12]}...: the weights are not the ones described")
    return _bundle_from(weights, card, folder)


def load_model_file(path: str | Path, card: ModelCard | None = None) -> ModelBundle:
    """Load a bare ``.keras`` / ``.h5`` model with a card (default: the seed-project preset).

    The card's ``weights`` and ``weights_sha256`` are set from the file; everything else
    (labels, input, thresholds) must match the model, or a ModelError says what differs.

    Parameters
    ----------
    path
        The model file.
    card
        A card preset (e.g. ``card_preset_seed_h5()``); None uses the seed-project preset.

    Returns
    -------
    ModelBundle
    """
    weights = Path(path)
    if not weights.is_file():
        raise ModelError(str(weights), "model file not found")
    if weights.suffix not in WEIGHT_SUFFIXES:
        raise ModelError(str(weights), f"unsupported model file (expected "
                         f"{', '.join(WEIGHT_SUFFIXES)})")
    card = card_preset_seed_h5() if card is None else card
    card = dataclasses.replace(card, weights=weights.name, weights_sha256=sha256_file(weights))
    card.validate(str(weights))
    return _bundle_from(weights, card, weights)


def load_any(path: str | Path, card: ModelCard | None = None) -> ModelBundle:
    """A bundle folder (:func:`load_bundle`), or a bare ``.keras``/``.h5`` file
    (:func:`load_model_file` with ``card``, default the seed-project preset).

    Parameters
    ----------
    path
        Folder or model file.
    card
        Card for a bare file; ignored for a bundle (its own card rules).

    Returns
    -------
    ModelBundle
    """
    check_tf_thread("load_any")
    target = Path(path)
    if target.suffix.lower() in WEIGHT_SUFFIXES and not target.is_dir():
        return load_model_file(target, card)
    return load_bundle(target)
