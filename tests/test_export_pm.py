"""Parametric Map of the heat maps: one frame per finding, source geometry, RWVM 0..1, dciodvfy."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from cxr_viewer.export.annotated import ExportError
from cxr_viewer.export.pm import build_parametric_map, write_parametric_map
from cxr_viewer.inference.findings import VINDR_FINDINGS
from cxr_viewer.inference.results import CamResult
from cxr_viewer.io.loader import load_image
from cxr_viewer.io.sample import generate_sample_study
from tests.dicom_results_kit import CORPUS_CHESTS, blob_cams, dciodvfy_errors
from tests.test_export_annotated import make_dicom

PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
FINDINGS = ("Pleural effusion", "Cardiomegaly", "Atelectasis")  # deliberately not VinDr order


@pytest.fixture
def pm_case(tmp_path):
    image = load_image(make_dicom(tmp_path / "source.dcm", rows=300, cols=240))
    cams = blob_cams(image, FINDINGS)
    path = write_parametric_map(
        image, cams, tmp_path / "pm.dcm", model_name="tiny-cnn", model_version="0.3.1",
        weights_sha256="ab" * 32,
    )  # fmt: skip
    return image, cams, path


def test_one_frame_per_finding_at_the_source_size_with_values_0_to_1(pm_case):
    image, cams, path = pm_case
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == PARAMETRIC_MAP
    assert ds.StudyInstanceUID == image.study_uid
    assert (int(ds.Rows), int(ds.Columns)) == image.shape
    assert int(ds.NumberOfFrames) == len(FINDINGS)
    frames = ds.pixel_array
    order = [f for f in VINDR_FINDINGS if f in FINDINGS]
    for i, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        rwvm = item.RealWorldValueMappingSequence[0]
        assert rwvm.LUTExplanation == f"{order[i]} heat map (gradcam)"
        assert item.FrameContentSequence[0].FrameLabel == rwvm.LUTExplanation
        assert rwvm.MeasurementUnitsCodeSequence[0].CodeValue == "1"
        real = frames[i].astype(np.float64) * float(rwvm.RealWorldValueSlope) + float(
            rwvm.RealWorldValueIntercept
        )
        assert real.min() >= 0.0 and real.max() == pytest.approx(1.0)
        assert not np.any(frames[i] % 256)  # level * 256: the low byte plane is empty (RLE)
        np.testing.assert_allclose(real, cams.maps[order[i]], atol=0.5 / 255 + 1e-6)  # kept to 1/255 (export.pm.LEVELS)
    # the source is referenced; the model is named
    for item in ds.PerFrameFunctionalGroupsSequence:
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert source.ReferencedSOPInstanceUID == image.sop_uid
    series = ds.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == image.series_uid
    assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == image.sop_uid
    models = [e.ManufacturerModelName for e in ds.ContributingEquipmentSequence]
    assert "tiny-cnn" in models
    # geometry: pixel for pixel over the source (its spacing; our own frame of reference)
    measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [1.0, 1.0]  # the source states none
    assert "nominal" in ds.ImageComments


def test_pm_passes_dciodvfy_and_is_rle_compressed_small(pm_case):
    path = pm_case[2]
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"  # RLE Lossless
    raw = int(ds.Rows) * int(ds.Columns) * int(ds.NumberOfFrames) * 2
    assert path.stat().st_size < raw / 3  # 2000x2000 real CAMs: ~1/10 (bench_dicom_results)


def test_sample_study_pms_pass_dciodvfy(tmp_path):
    for src in generate_sample_study(tmp_path / "study"):
        image = load_image(src)
        out = write_parametric_map(image, blob_cams(image), tmp_path / f"{src.stem}.pm.dcm")
        assert dciodvfy_errors(out) == [], src.name
        ds = pydicom.dcmread(out)
        spacing = image.spacing
        measures = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
        if spacing is not None:
            assert [float(v) for v in measures.PixelSpacing] == pytest.approx(
                [spacing.row_mm, spacing.col_mm]
            )


@pytest.mark.parametrize("name", CORPUS_CHESTS)
def test_corpus_chest_radiograph_pms_pass_dciodvfy(corpus_dir, tmp_path, name):
    image = load_image(corpus_dir / "corpus" / name)
    out = write_parametric_map(image, blob_cams(image), tmp_path / "pm.dcm")
    assert dciodvfy_errors(out) == []


def test_maps_of_another_size_or_image_are_refused(tmp_path):
    image = load_image(make_dicom(tmp_path / "s.dcm", rows=300, cols=240))
    small = CamResult(image.image_id, "gradcam", {"Cardiomegaly": np.zeros((30, 24), np.float32)})
    with pytest.raises(ExportError, match="must match the source geometry"):
        build_parametric_map(image, small)
    other = CamResult("other", "gradcam", blob_cams(image).maps)
    with pytest.raises(ExportError, match="another image"):
        build_parametric_map(image, other)
    with pytest.raises(ExportError, match="no heat maps"):
        build_parametric_map(image, CamResult(image.image_id, "gradcam", {}))
