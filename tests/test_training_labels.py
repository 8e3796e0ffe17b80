"""The explicit NIH -> VinDr-CXR label map and the model head's targets."""

from __future__ import annotations

from cxr_viewer.inference.findings import NO_FINDING, VINDR_FINDINGS
from cxr_viewer.training.labels import (
    MODEL_LABEL_NAMES,
    MODEL_LABELS,
    NIH_LABELS,
    NIH_TO_VINDR,
    NO_FINDING_INDEX,
    NOT_SCORED_BY_NIH,
    SCORED_INDICES,
    UNKNOWN,
    model_label_for_box,
    nih_to_model_targets,
    vindr_to_model_targets,
)


def test_map_is_the_documented_one() -> None:
    assert NIH_TO_VINDR == {
        "Atelectasis": "Atelectasis",
        "Cardiomegaly": "Cardiomegaly",
        "Consolidation": "Consolidation",
        "Infiltration": "Infiltration",
        "Effusion": "Pleural effusion",
        "Mass": "Nodule/Mass",
        "Nodule": "Nodule/Mass",
        "Pleural_Thickening": "Pleural thickening",
        "Pneumothorax": "Pneumothorax",
        "Fibrosis": "Pulmonary fibrosis",
    }
    assert set(NOT_SCORED_BY_NIH) == {
        "Aortic enlargement", "Calcification", "ILD", "Lung Opacity", "Other lesion",
    }
    assert set(NIH_TO_VINDR) <= set(NIH_LABELS)


def test_head_scores_each_mapped_finding_once() -> None:
    scored = [f for _, f in MODEL_LABELS if f is not None and f != NO_FINDING]
    assert len(scored) == len(set(scored)) == 9
    assert [MODEL_LABELS[i][1] for i in SCORED_INDICES] == scored
    assert set(scored) == set(VINDR_FINDINGS) - set(NOT_SCORED_BY_NIH)
    assert len(MODEL_LABEL_NAMES) == len(set(MODEL_LABEL_NAMES))


def test_nodule_and_mass_merge() -> None:
    base = {lab: 0.0 for lab in NIH_LABELS}
    i = MODEL_LABEL_NAMES.index("Nodule/Mass")
    assert nih_to_model_targets(base)[i] == 0.0
    assert nih_to_model_targets({**base, "Mass": 1.0})[i] == 1.0
    assert nih_to_model_targets({**base, "Nodule": 1.0})[i] == 1.0
    t = nih_to_model_targets({**base, "Nodule": 1.0})
    assert t[MODEL_LABEL_NAMES.index("Nodule")] == 1.0
    assert t[MODEL_LABEL_NAMES.index("Mass")] == 0.0
    # one source unknown and the other negative: the merged label is unknown, not negative
    partial = {k: v for k, v in base.items() if k != "Mass"}
    assert nih_to_model_targets(partial)[i] == UNKNOWN
    assert nih_to_model_targets({**partial, "Nodule": 1.0})[i] == 1.0


def test_effusion_maps_to_pleural_effusion() -> None:
    t = nih_to_model_targets({**{lab: 0.0 for lab in NIH_LABELS}, "Effusion": 1.0})
    assert [MODEL_LABEL_NAMES[i] for i, v in enumerate(t) if v == 1.0] == ["Pleural effusion"]


def test_vindr_targets_mask_nih_extras() -> None:
    t = vindr_to_model_targets({"Pleural effusion", "Aortic enlargement"})
    by_name = dict(zip(MODEL_LABEL_NAMES, t, strict=True))
    assert by_name["Pleural effusion"] == 1.0
    assert by_name["Cardiomegaly"] == 0.0
    for extra in ("Edema", "Emphysema", "Hernia", "Pneumonia", "Mass", "Nodule"):
        assert by_name[extra] == UNKNOWN


def test_box_labels() -> None:
    assert model_label_for_box("Infiltrate") == "Infiltration"
    assert model_label_for_box("Effusion") == "Pleural effusion"
    assert model_label_for_box("Pleural effusion") == "Pleural effusion"
    assert model_label_for_box("Mass") == "Nodule/Mass"
    assert model_label_for_box("Pleural Thickening") == "Pleural thickening"
    assert model_label_for_box("Pneumonia") == "Pneumonia"
    assert model_label_for_box("Aortic enlargement") is None
    assert model_label_for_box("Fracture") is None


def test_no_finding_output_is_the_16th() -> None:
    assert NO_FINDING_INDEX == 15 == len(MODEL_LABELS) - 1
    assert MODEL_LABELS[NO_FINDING_INDEX] == ("No finding", NO_FINDING)
    normal = nih_to_model_targets({lab: 0.0 for lab in NIH_LABELS})
    assert normal[NO_FINDING_INDEX] == 1.0 and sum(v == 1.0 for v in normal) == 1
    # an NIH-only extra (Hernia) also makes the image not normal
    hernia = nih_to_model_targets({**{lab: 0.0 for lab in NIH_LABELS}, "Hernia": 1.0})
    assert hernia[NO_FINDING_INDEX] == 0.0
    # one label unknown, none positive: normality is unknown
    partial = {lab: 0.0 for lab in NIH_LABELS if lab != "Edema"}
    assert nih_to_model_targets(partial)[NO_FINDING_INDEX] == UNKNOWN
    by_name = dict(zip(MODEL_LABEL_NAMES, vindr_to_model_targets(set()), strict=True))
    assert by_name["No finding"] == 1.0
    by_name = dict(zip(MODEL_LABEL_NAMES, vindr_to_model_targets({"ILD"}), strict=True))
    assert by_name["No finding"] == 0.0
