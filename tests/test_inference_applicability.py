"""The model reads frontal chest radiographs: other images are refused, unclear ones warned."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.inference.applicability import NotApplicable, assess
from cxr_viewer.io.types import ImageData


def _image(modality="CR", body_part="CHEST", view="PA", source="DICOM", frames=1) -> ImageData:
    tags = {"BodyPartExamined": body_part, "ViewPosition": view}
    return ImageData(
        path="/data/x.dcm",
        frames=np.zeros((frames, 8, 8), np.uint16),
        modality=modality,
        tags=tags,
        source_format=source,
    )


def test_a_chest_pa_cr_passes_without_warning() -> None:
    assert assess(_image()) == ()
    assert assess(_image(modality="DX", body_part="THORAX", view="AP")) == ()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"modality": "MR"}, "modality MR"),
        ({"modality": "CT"}, "modality CT"),
        ({"body_part": "HIP"}, "body part HIP"),
        ({"body_part": "extremity"}, "body part EXTREMITY"),
        ({"view": "LL"}, "view position LL"),
        ({"view": "LATERAL"}, "view position LATERAL"),
    ],
)
def test_other_images_are_refused_with_the_reason(kwargs, words) -> None:
    with pytest.raises(NotApplicable) as info:
        assess(_image(**kwargs))
    assert words in str(info.value) and "/data/x.dcm" in str(info.value)


def test_unclear_headers_are_analysed_with_a_warning() -> None:
    warnings = assess(_image(modality="", body_part="", view=""))
    assert any("modality not stated" in w for w in warnings)
    assert any("body part not stated" in w for w in warnings)
    assert assess(_image(frames=3)) == ("only frame 1 of 3 is analysed",)
    png = assess(_image(source="PNG", modality="", body_part="", view=""))
    assert png == ("no DICOM header: the model assumes a frontal chest radiograph",)


def test_the_bundle_refuses_before_running_the_model(tmp_path) -> None:
    """predict() and cams() both go through the check (no numbers for a hip radiograph)."""
    from cxr_viewer.inference.bundle import load_bundle
    from tests.inference_testkit import cam_model, vindr_card, write_bundle

    bundle = load_bundle(write_bundle(tmp_path / "b", cam_model(32), vindr_card(32)))
    hip = _image(body_part="HIP")
    with pytest.raises(NotApplicable):
        bundle.predict(hip)
    with pytest.raises(NotApplicable):
        bundle.cams(hip)
    unclear = _image(body_part="")
    prediction = bundle.predict(unclear)
    assert prediction.warnings == ("body part not stated: the model assumes a chest radiograph",)
