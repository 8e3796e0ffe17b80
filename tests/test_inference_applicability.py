"""The model reads frontal chest radiographs: other images are refused, unclear ones warned."""

from __future__ import annotations

import numpy as np
import pytest

from cxr_viewer.inference.applicability import (
    MIN_CONTENT_SIDE,
    NotApplicable,
    assess,
    content_check,
    content_features,
)
from cxr_viewer.io.types import ImageData


def chest_like(rows: int = 300, cols: int = 270) -> np.ndarray:
    """A crude frontal-chest layout: bright body, two dark lung fields, bright mediastinum and
    lower zone, black air outside."""
    img = np.full((rows, cols), 600, np.uint16)
    r, c = np.mgrid[0:rows, 0:cols]
    for cx in (0.27, 0.73):
        lung = ((r / rows - 0.45) / 0.25) ** 2 + ((c / cols - cx) / 0.15) ** 2 <= 1
        img[lung] = 250
    img[:, : int(0.05 * cols)] = 50
    img[:, int(0.95 * cols):] = 50
    img[0, 0] = 0
    img[-1, -1] = 1000
    return img


def _image(modality="CR", body_part="CHEST", view="PA", source="DICOM", frames=1,
           pixels=None) -> ImageData:
    tags = {"BodyPartExamined": body_part, "ViewPosition": view}
    pixels = chest_like() if pixels is None else pixels
    return ImageData(
        path="/data/x.dcm",
        frames=np.repeat(pixels[np.newaxis], frames, axis=0),
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


# ---- the pixels, not only the header (issue 10, item 4) ----------------------------------------
def test_content_rules_accept_a_chest_layout_and_refuse_what_is_not() -> None:
    assert content_check(_image()).is_chest
    white = np.full((300, 270), 4000, np.uint16)
    white[0, 0] = 0
    with pytest.raises(NotApplicable, match="almost uniformly white"):
        assess(_image(pixels=white))
    wide = np.tile(chest_like(260, 260), (1, 3))
    with pytest.raises(NotApplicable, match="aspect ratio 3.00"):
        assess(_image(pixels=wide, body_part=""))
    inverted = (1000 - chest_like()).astype(np.uint16)
    with pytest.raises(NotApplicable, match="no lung-field pattern"):
        assess(_image(pixels=inverted))
    banded = np.zeros((200, 180), np.uint16)
    banded[80:120] = chest_like(40, 180)  # a thin strip of anatomy in an empty frame
    banded[0, 0], banded[1, 1] = 0, 1000
    check = content_features(banded.astype(np.uint8))
    assert not check.is_chest and "empty band" in check.reasons[0]


def test_small_images_are_not_judged_by_their_pixels_and_say_so() -> None:
    small = _image(pixels=chest_like(64, 64))
    assert content_check(small) is None
    assert assess(small) == (
        f"image smaller than {MIN_CONTENT_SIDE} px: its content was not checked",)


def test_the_corpus_dental_panoramic_and_the_near_white_dx_are_refused(corpus_dir) -> None:
    """Both have a header that lets them through (no Body Part Examined): the pixels refuse."""
    from cxr_viewer.io.loader import load_image

    dental = load_image(corpus_dir / "corpus" / "fo-dicom__CR-ModalitySequenceLUT.dcm")
    with pytest.raises(NotApplicable, match="empty band") as info:
        assess(dental)
    assert "fo-dicom__CR-ModalitySequenceLUT.dcm" in str(info.value)
    white = load_image(corpus_dir / "corpus" / "pylibjpeg-data__JPEG2KLossless_1s_1f_u_16_16.dcm")
    with pytest.raises(NotApplicable, match="almost uniformly white"):
        assess(white)
    # the corpus's real chest radiographs pass
    for name in ("torchxrayvision__SIIM_CXR_850819.dcm", "pylibjpeg-data__966_fixed.dcm",
                 "dicom-test-files__WG04_RG1_JLSN.dcm"):
        assert content_check(load_image(corpus_dir / "corpus" / name)).is_chest, name


@pytest.mark.slow
def test_false_refusal_rate_on_the_nih_chest_radiographs_and_refusals_on_corpus(
        nih_dir, corpus_dir) -> None:
    """Measured on every shared NIH image (target <= 1 %) and the corpus's non-chest images
    (benchmarks/RESULTS.md: 2 of 1,091 = 0.18 %; 30 of 54 judged non-chest refused by the
    pixels, 54 of 68 with the header)."""
    from benchmarks.bench_applicability import corpus_results, nih_results

    n, refused = nih_results(nih_dir / "images")
    assert n == 1091
    assert len(refused) / n <= 0.01, refused
    rows = corpus_results(corpus_dir / "corpus")
    non_chest = [r for r in rows if not r[1]]
    judged = [r for r in non_chest if r[3] != "too small to judge"]
    by_pixels = [r for r in judged if r[2]]
    assert len(by_pixels) >= 0.5 * len(judged), by_pixels
    assert not [r for r in rows if r[1] and r[2] and "Fake_MONOHR1" not in r[0]]
