"""End to end: a two-epoch training run on tiny generated data gives a loadable bundle with a
valid card, resumes from its checkpoint, and `evaluate` reproduces the card's numbers."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from cxr_viewer.inference.card import ModelCard
from cxr_viewer.training.config import TrainConfig, config_from_dict, load_config
from cxr_viewer.training.labels import MODEL_LABEL_NAMES, NIH_LABELS, NOT_SCORED_BY_NIH

REPO = Path(__file__).resolve().parent.parent


def _generate_nih_layout(root: Path, n: int = 16, size: int = 64, normals: bool = False) -> None:
    """n images of n // 2 patients: 'Effusion' images carry a bright blob low on the right.
    With ``normals``, every fourth image has no label at all (NIH "No Finding")."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    header = ["file", "patient_id", "view", *NIH_LABELS]
    rows, boxes = [], []
    for i in range(n):
        img = rng.integers(20, 60, (size, size)).astype(np.uint8)
        labels = {lab: 0 for lab in NIH_LABELS}
        if normals and i % 4 == 0:
            cv2.imwrite(str(root / "images" / f"{i}.png"), img)
            rows.append([f"images/{i}.png", str(i // 2), "PA", *[0 for _ in NIH_LABELS]])
            continue
        labels["Atelectasis" if i % 3 else "Cardiomegaly"] = 1
        if i % 2:
            labels["Effusion"] = 1
            img[40:56, 8:24] = 220
            boxes.append([f"images/{i}.png", "NIH_BBox_List_2017", "Effusion", 8, 40, 24, 56])
        cv2.imwrite(str(root / "images" / f"{i}.png"), img)
        rows.append([f"images/{i}.png", str(i // 2), "PA", *[labels[lab] for lab in NIH_LABELS]])
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])
    with open(root / "boxes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "box_source", "finding", "x1_stored", "y1_stored", "x2_stored",
                    "y2_stored"])
        w.writerows(boxes)


def test_shipped_configs_parse() -> None:
    cfg = load_config(REPO / "configs" / "nih-default.json")
    assert cfg.model.architecture == "compact" and cfg.data.kind == "nih-shared"
    full = load_config(REPO / "configs" / "vindr-full.json")
    assert full.model.architecture == "densenet121" and full.mixed_precision
    with pytest.raises(ValueError, match="epochz"):
        config_from_dict({"epochz": 3})


def test_box_loss_defaults_to_the_original_and_the_shipped_configs_keep_their_recipes() -> None:
    """The bundled 2.1.0 recipe (CAM box loss, a 3-seed ensemble, the v1-compatible split with
    a calibration split) writes models/default; the 1.0.0 ensemble recipe (original map loss)
    writes under runs/, never over the bundled model."""
    assert TrainConfig().box_loss == "map_bce"
    default = load_config(REPO / "configs" / "nih-default.json")
    assert default.box_loss == "cam" and default.box_supervision > 0
    assert default.bundle_dir == "models/default" and default.version == "2.1.0"
    assert default.split == "v1-compatible" and default.calibration_fraction == 0.25
    assert "calibration split of training patients" in default.card_notes
    shipped = ModelCard.load(REPO / "models" / "default" / "model.json")
    assert shipped.version == "2.1.0" and default.card_notes in shipped.notes
    assert shipped.operating_points and shipped.calibration and shipped.no_finding_index == 15
    old = load_config(REPO / "configs" / "nih-ensemble-1.0.json")
    assert old.box_loss == "map_bce" and old.box_supervision == 0.5
    assert tuple(old.ensemble_seeds) == (0, 1, 2) and old.bundle_dir.startswith("runs/")
    assert (default.split_seed_value, default.val_fraction) == (
        old.split_seed_value, old.val_fraction)
    with pytest.raises(ValueError, match="box_loss"):
        config_from_dict({"box_loss": "cams"})
    with pytest.raises(ValueError, match="cam_temperature"):
        config_from_dict({"cam_temperature": 0.0})


def _tiny_config(tmp_path: Path, n: int = 16, normals: bool = False, **overrides) -> TrainConfig:
    """A seconds-long training config on a generated 16-image NIH layout at 64 px."""
    data = tmp_path / "nih"
    _generate_nih_layout(data, n=n, normals=normals)
    settings = {"batch_size": 8, "val_fraction": 0.5, "box_supervision": 1.0,
                "cache_dir": str(tmp_path / "cache"), "run_dir": str(tmp_path / "run")}
    cfg = replace(TrainConfig(), **{**settings, **overrides})
    return replace(cfg, data=replace(cfg.data, root=str(data)),
                   model=replace(cfg.model, input_size=64, width=0.5))


@pytest.mark.slow
def test_cam_box_loss_training_runs_and_exports_the_plain_model(tmp_path: Path) -> None:
    cfg = _tiny_config(tmp_path, epochs=1, warmup_epochs=0, box_loss="cam")
    from cxr_viewer.training.train import run_training

    run_dir = run_training(cfg, log=False, finalize=False)
    history = json.loads((run_dir / "history.jsonl").read_text().splitlines()[0])
    assert np.isfinite(history["loss"]) and history["loss"] > 0
    from cxr_viewer.training.evaluate import load_keras_model

    model = load_keras_model(run_dir / "final.keras")
    assert [layer.name for layer in model.layers][-1] == "predictions"
    assert model.output_shape == (None, len(MODEL_LABEL_NAMES))


@pytest.mark.slow
def test_two_epoch_training_gives_a_loadable_bundle(tmp_path: Path) -> None:
    cfg = _tiny_config(tmp_path, epochs=2, warmup_epochs=1,
                       bundle_dir=str(tmp_path / "bundle"), report_dir=str(tmp_path / "report"))
    from cxr_viewer.training.train import run_training

    bundle_dir = run_training(cfg, log=False)
    card = ModelCard.load(bundle_dir / "model.json")
    assert [lab.name for lab in card.labels] == list(MODEL_LABEL_NAMES)
    assert set(card.not_scored_findings) == set(NOT_SCORED_BY_NIH)
    assert card.gradcam_layer == "cam_features" and card.input.height == 64
    assert "not validated for clinical use" in card.intended_use.lower()
    assert all(0.0 <= lab.threshold <= 1.0 for lab in card.labels)
    assert card.metrics["split"]["val_images"] + card.metrics["split"]["train_images"] == 16
    assert "Pleural effusion" in card.metrics["localization"]["per_finding"]
    for name in ("report.md", "metrics.json", "roc.png"):
        assert (tmp_path / "report" / name).stat().st_size > 100
    assert cv2.imread(str(tmp_path / "report" / "roc.png")) is not None

    # the app's loader accepts it (safe_mode, SHA-256, shapes) and predicts 15 probabilities
    from cxr_viewer.inference.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    probs = bundle.predict_batch(np.zeros((1, 64, 64, 1), np.float32))
    assert probs.shape == (1, len(MODEL_LABEL_NAMES))
    assert np.all((probs >= 0) & (probs <= 1))

    # the evaluation reproduces the card's numbers
    from cxr_viewer.training.evaluate import reproduce

    _, cmp = reproduce(bundle_dir, out_dir=tmp_path / "report2")
    assert cmp["reproduced"] and cmp["compared"] > 50, cmp

    # resuming: a third epoch continues from the checkpoint instead of starting over
    run_training(replace(cfg, epochs=3), log=False, finalize=False)
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert [h["epoch"] for h in history] == [1, 2, 3]


@pytest.mark.slow
def test_calibration_split_training_writes_a_2_0_card(tmp_path: Path) -> None:
    """calibration_fraction > 0: the weights see inner-train only; the card carries Platt
    calibration, three operating modes and the Abnormal score from the calibration split, the
    report has the reliability diagram, the app predicts with a mode, evaluate reproduces all."""
    cfg = _tiny_config(tmp_path, n=48, normals=True, epochs=1, warmup_epochs=0, box_loss="cam",
                       val_fraction=0.3, calibration_fraction=0.4,
                       bundle_dir=str(tmp_path / "bundle"), report_dir=str(tmp_path / "report"))
    from cxr_viewer.training.train import run_training

    bundle_dir = run_training(cfg, log=False)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    card = ModelCard.load(bundle_dir / "model.json")
    m = card.metrics["split"]
    assert m["train_images"] == len(split["train"]) and m["val_images"] == len(split["holdout"])
    assert m["calibration_images"] == len(split["val"])  # monitored during training
    assert m["train_images"] + m["calibration_images"] + m["val_images"] == 48
    assert set(card.operating_points) == {"high-sensitivity", "balanced", "high-specificity"}
    assert set(card.calibration) == set(MODEL_LABEL_NAMES)
    assert card.abnormal["source"] in ("1 - No finding", "max scored finding")
    bal = card.operating_points["balanced"]["thresholds"]
    assert [lab.threshold for lab in card.labels] == [bal[n] for n in MODEL_LABEL_NAMES]
    assert "flags_per_normal" in card.metrics["operating_validation"]["balanced"]
    assert (tmp_path / "report" / "reliability.png").stat().st_size > 100
    assert "Operating modes" in (tmp_path / "report" / "report.md").read_text()

    from cxr_viewer.inference.bundle import load_bundle
    from tests.inference_testkit import gray_image

    bundle = load_bundle(bundle_dir)
    img = gray_image(np.full((64, 64), 100, np.uint16))
    pred = bundle.predict(img, mode="high-specificity")
    assert pred.mode == "high-specificity" and pred.calibrated and pred.abnormal is not None

    from cxr_viewer.training.evaluate import reproduce

    _, cmp = reproduce(bundle_dir, out_dir=tmp_path / "report2")
    assert cmp["reproduced"] and cmp["compared"] > 200, cmp


def test_cli_refuses_missing_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cxr_viewer.cli import main

    assert main(["train", "--config", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: config file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": {"architecture": "compact", "depth": 3}}')
    assert main(["train", "--config", str(bad)]) == 2
    assert "depth" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path)]) == 2
    assert "no model.json" in capsys.readouterr().err
