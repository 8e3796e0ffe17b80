"""Folder scanning: studies -> series -> instances, non-images listed as skipped."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.uid import generate_uid

from cxr_viewer.io.sample import generate_sample_study
from cxr_viewer.io.scan import scan_folder


def test_groups_studies_series_and_lists_skipped(tmp_path):
    paths = generate_sample_study(tmp_path / "study")
    # A third instance in the CR series, numbered before the original.
    ds = dcmread(paths[0])
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 0
    ds.save_as(tmp_path / "study" / "zz_extra.dcm")
    Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").save(tmp_path / "photo.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "DICOMDIR").write_bytes(b"x")

    result = scan_folder(tmp_path)
    # the sample's current study, its prior (sample.PRIOR_FILE) and the PNG
    assert len(result.studies) == 3
    dicom = next(s for s in result.studies
                 if s.patient_id == "SAMPLE-0001" and s.date == "20240101")
    assert [se.modality for se in dicom.series] == ["CR", "DX"]
    cr = dicom.series[0]
    assert [i.path.name for i in cr.instances] == ["zz_extra.dcm", "IM0001_CR.dcm"]
    assert cr.instances[1].rows == 1760 and cr.instances[1].view_position == "PA"
    png = next(s for s in result.studies if not s.patient_id)
    assert png.instances[0].source_format == "PNG"
    skipped = {p.name: why for p, why in result.skipped}
    assert set(skipped) == {"notes.txt", "DICOMDIR"}
    assert "not a DICOM file" in skipped["notes.txt"]


def test_single_file_and_missing_folder(tmp_path):
    paths = generate_sample_study(tmp_path)
    one = scan_folder(paths[1])
    assert len(one.instances) == 1 and one.instances[0].modality == "DX"
    missing = scan_folder(tmp_path / "nope")
    assert missing.studies == [] and missing.skipped[0][1] == "does not exist"
    shutil.rmtree(tmp_path)
