"""Model architectures. Keras is imported inside functions (never at module level).

``compact_cnn``: an efficient CPU network for the bundled model (1-channel input, stride-2 stem,
residual depthwise-separable blocks with BatchNorm, a dilated last stage for a wider receptive
field at 1/16 resolution, the Grad-CAM layer ``cam_features``, global average pooling, one sigmoid
per label). ``densenet121``: the field's reference (CheXNet) for users with a GPU and VinDr-CXR.
Only built-in Keras layers are used, so the saved ``.keras`` file loads with ``safe_mode=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CAM_LAYER = "cam_features"
OUTPUT_LAYER = "predictions"


def _sep_block(x: Any, filters: int, stride: int, dilation: int, name: str) -> Any:
    from keras import layers

    shortcut = x
    y = layers.SeparableConv2D(
        filters, 3, strides=stride, dilation_rate=dilation if stride == 1 else 1,
        padding="same", use_bias=False, name=f"{name}_sep1",
    )(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.SeparableConv2D(
        filters, 3, dilation_rate=dilation, padding="same", use_bias=False, name=f"{name}_sep2"
    )(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(
            filters, 1, strides=stride, use_bias=False, name=f"{name}_proj"
        )(shortcut)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def compact_cnn(
    input_size: int,
    n_outputs: int,
    width: float = 1.0,
    dropout: float = 0.2,
    name: str = "cxr_compact_cnn",
) -> Any:
    """Build the compact CPU CNN.

    Parameters
    ----------
    input_size
        Square input side in pixels (multiple of 16); input is (size, size, 1) in [0, 1].
    n_outputs
        Number of sigmoid outputs.
    width
        Channel multiplier.
    dropout
        Dropout rate before the classifier.

    Returns
    -------
    keras.Model
        Output layer ``predictions`` (sigmoid); Grad-CAM layer ``cam_features`` at 1/16 of the
        input resolution (16x16 for 256 px).
    """
    import keras
    from keras import layers

    if input_size % 16:
        raise ValueError(f"input_size must be a multiple of 16, not {input_size}")

    def c(n: int) -> int:
        return max(8, int(round(n * width / 8)) * 8)

    inp = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Conv2D(c(16), 3, strides=2, padding="same", use_bias=False, name="stem_conv1")(inp)
    x = layers.BatchNormalization(name="stem_bn1")(x)
    x = layers.ReLU(name="stem_relu1")(x)
    x = layers.Conv2D(c(32), 3, strides=2, padding="same", use_bias=False, name="stem_conv2")(x)
    x = layers.BatchNormalization(name="stem_bn2")(x)
    x = layers.ReLU(name="stem_relu2")(x)  # 1/4
    x = _sep_block(x, c(48), 1, 1, "b1")
    x = layers.ReLU(name="b1_out")(x)
    x = _sep_block(x, c(96), 2, 1, "b2")  # 1/8
    x = layers.ReLU(name="b2_out")(x)
    x = _sep_block(x, c(96), 1, 1, "b3")
    x = layers.ReLU(name="b3_out")(x)
    x = _sep_block(x, c(160), 2, 1, "b4")  # 1/16
    x = layers.ReLU(name="b4_out")(x)
    x = _sep_block(x, c(192), 1, 2, "b5")  # dilated: wider receptive field for heart/pleura
    x = layers.ReLU(name="b5_out")(x)
    x = _sep_block(x, c(256), 1, 3, "b6")
    x = layers.ReLU(name=CAM_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_outputs, activation="sigmoid", dtype="float32", name=OUTPUT_LAYER)(x)
    return keras.Model(inp, out, name=name)


def densenet121(
    input_size: int,
    n_outputs: int,
    imagenet_weights: str | Path | None = None,
    dropout: float = 0.0,
) -> Any:
    """DenseNet121 (CheXNet) with a sigmoid head; 3-channel input, torch-style ImageNet
    normalization done by the data pipeline (card ``normalization = imagenet_torch``).

    ``imagenet_weights`` must be a local ``.h5`` file of the no-top ImageNet weights
    (``densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5``); nothing is downloaded.
    The Grad-CAM layer is ``relu`` (the last activation).
    """
    import keras
    from keras import layers

    if imagenet_weights is not None and not Path(imagenet_weights).is_file():
        raise FileNotFoundError(f"{imagenet_weights}: ImageNet weights file not found")
    base = keras.applications.DenseNet121(
        include_top=False,
        weights=str(imagenet_weights) if imagenet_weights else None,
        input_shape=(input_size, input_size, 3),
    )
    x = layers.GlobalAveragePooling2D(name="gap")(base.output)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    out = layers.Dense(n_outputs, activation="sigmoid", dtype="float32", name=OUTPUT_LAYER)(x)
    return keras.Model(base.input, out, name="densenet121_cxr")


def build_model(arch: str, input_size: int, n_outputs: int, **kwargs: Any) -> tuple[Any, str]:
    """Build an architecture by name; returns (model, Grad-CAM layer name)."""
    if arch == "compact":
        return compact_cnn(input_size, n_outputs, **kwargs), CAM_LAYER
    if arch == "densenet121":
        return densenet121(input_size, n_outputs, **kwargs), "relu"
    raise ValueError(f"unknown architecture {arch!r} (compact | densenet121)")


def with_box_head(model: Any, cam_layer: str = CAM_LAYER) -> Any:
    """Training-only wrapper: adds an output ``box_map`` = the classifier applied at every
    location of the Grad-CAM layer (a class activation map, per-location sigmoid).

    Because the head is global average pooling followed by one dense layer, the map shares the
    classifier's weights: supervising it with radiologist boxes teaches the very map that
    Grad-CAM shows. The exported model is ``model`` itself (same layers, no extra output).
    """
    import keras

    features = model.get_layer(cam_layer).output
    dense = model.get_layer(OUTPUT_LAYER)
    box_map = dense(features)
    return keras.Model(
        model.inputs, {OUTPUT_LAYER: model.outputs[0], "box_map": box_map}, name=model.name + "_train"
    )


def ensemble(members: list[Any], name: str = "cxr_compact_ensemble") -> Any:
    """Average several trained ``compact_cnn`` members inside ONE keras model.

    Each member's head is GAP -> Dense, so averaging the members' logits equals one Dense layer
    on the concatenated pooled features with the stacked kernels / n and the mean bias. The
    concatenated feature maps are the new ``cam_features`` layer, so the ensemble's Grad-CAM is
    the average of the members' (up to the ReLU). Only built-in layers: loads with safe_mode.
    """
    import keras
    import numpy as np
    from keras import layers

    if len(members) < 2:
        raise ValueError("an ensemble needs at least two members")
    shape = members[0].input_shape[1:]
    inp = keras.Input(shape, name="image")
    feats = []
    kernels, biases = [], []
    for k, m in enumerate(members):
        if m.input_shape[1:] != shape:
            raise ValueError("ensemble members must share the input shape")
        body = keras.Model(m.inputs, m.get_layer(CAM_LAYER).output, name=f"member_{k}")
        feats.append(body(inp))
        w, b = m.get_layer(OUTPUT_LAYER).get_weights()
        kernels.append(w)
        biases.append(b)
    x = layers.Concatenate(axis=-1, name=CAM_LAYER)(feats)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    dense = layers.Dense(kernels[0].shape[1], activation="sigmoid", dtype="float32",
                         name=OUTPUT_LAYER)
    out = dense(x)
    model = keras.Model(inp, out, name=name)
    n = float(len(members))
    dense.set_weights([np.concatenate(kernels, axis=0) / n, np.mean(biases, axis=0)])
    return model


def with_cam_head(model: Any, cam_layer: str = CAM_LAYER) -> Any:
    """Training-only wrapper: adds an output ``box_map`` = the raw class activation map
    ``features . W`` (B, h, w, L) of the classifier's own kernel (no bias, no sigmoid), for
    :func:`cxr_viewer.training.losses.cam_box_loss`. The kernel is shared with ``predictions``,
    so the loss trains the map Grad-CAM shows (for GAP -> Dense, Grad-CAM of label c is
    ``ReLU(features . W_c)`` up to a positive factor). The exported model is ``model`` itself.
    """
    import keras
    from keras import ops

    dense = model.get_layer(OUTPUT_LAYER)

    class ClassActivationMap(keras.layers.Layer):
        def __init__(self, head: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.head = head

        def call(self, features: Any) -> Any:
            kernel = ops.cast(self.head.kernel, features.dtype)
            return ops.cast(ops.einsum("bhwc,cl->bhwl", features, kernel), "float32")

    cam = ClassActivationMap(dense, name="box_map")(model.get_layer(cam_layer).output)
    return keras.Model(
        model.inputs, {OUTPUT_LAYER: model.outputs[0], "box_map": cam}, name=model.name + "_train"
    )


def build_for_config(cfg: Any) -> tuple[Any, str]:
    """The (uncompiled) model of a ``TrainConfig`` and its Grad-CAM layer name (here, not in
    ``train``, so that ``pretrain`` and ``train`` both build from it without an import cycle)."""
    from cxr_viewer.training.labels import MODEL_LABELS

    m = cfg.model
    kwargs: dict[str, Any] = {"dropout": m.dropout}
    if m.architecture == "compact":
        kwargs["width"] = m.width
        if m.channels != 1:
            raise ValueError("the compact architecture takes 1-channel input")
    elif m.architecture == "densenet121":
        kwargs["imagenet_weights"] = m.imagenet_weights or None
    return build_model(m.architecture, m.input_size, len(MODEL_LABELS), **kwargs)


def warmup_cosine_adamw(learning_rate: float, weight_decay: float, epochs: int,
                        warmup_epochs: int, steps: int) -> Any:
    """AdamW with a linear warm-up from a tenth of ``learning_rate`` over ``warmup_epochs`` and
    a cosine decay to 1 % over the rest (the supervised fit and the pretraining both use it)."""
    import keras

    warmup = min(warmup_epochs * steps, max(epochs * steps - 1, 0))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.1 if warmup else learning_rate,
        decay_steps=max(epochs * steps - warmup, 1),
        alpha=0.01,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay)
