"""How often the pixel-content applicability check refuses real chest radiographs, and how often it
refuses what is not one (issue 10, item 4).

    python benchmarks/bench_applicability.py [SHARED_DATA]   (default ../shared/data)

* false refusals: every image of ``nih-cxr/images`` (1,091 frontal chest radiographs);
* refusals of the DICOM corpus's non-chest images (pixels only, the header ignored, and with the
  header check too); the corpus's chest radiographs are listed apart.

Prints a Markdown report (benchmarks/RESULTS.md keeps the last one).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from cxr_viewer.inference.applicability import (  # noqa: E402
    MIN_CONTENT_SIDE,
    NotApplicable,
    _assess_header,
    content_check,
)
from cxr_viewer.io.loader import load_image  # noqa: E402

#: Corpus files that are chest radiographs (header or pixels); the others are non-chest.
CORPUS_CHEST = frozenset({
    "dicom-test-files__WG04_RG1_J2KI.dcm", "dicom-test-files__WG04_RG1_JLSN.dcm",
    "fo-dicom__CR-MONO1-10-chest.dcm", "pylibjpeg-data__966.dcm", "pylibjpeg-data__966_fixed.dcm",
    "torchxrayvision__SIIM_CXR_850819.dcm", "torchxrayvision__Fake_MONOHR1.dcm",
    "orthanc-tests__Monochrome1-Jpeg.dcm",
})


def corpus_results(corpus: Path) -> list[tuple[str, bool, bool, str]]:
    """(name, chest?, refused by the pixels, reason) for every corpus file that decodes."""
    out = []
    for path in sorted(corpus.glob("*.dcm")):
        try:
            image = load_image(path)
        except Exception:  # noqa: BLE001 - undecodable files are not analysed at all
            continue
        check = content_check(image)
        if check is None:
            out.append((path.name, path.name in CORPUS_CHEST, False, "too small to judge"))
            continue
        header = ""
        try:
            _assess_header(image)
        except NotApplicable as exc:
            header = exc.cause
        out.append((path.name, path.name in CORPUS_CHEST, bool(check.reasons),
                    "; ".join(check.reasons) or ("header: " + header if header else "")))
    return out


def nih_results(images: Path) -> tuple[int, list[tuple[str, str]]]:
    files = sorted(images.glob("*.png"))
    refused = []
    for path in files:
        check = content_check(load_image(path))
        if check is not None and check.reasons:
            refused.append((path.name, "; ".join(check.reasons)))
    return len(files), refused


def main(argv: list[str]) -> int:
    shared = Path(argv[1]) if len(argv) > 1 else REPO.parent / "shared" / "data"
    n, refused = nih_results(shared / "nih-cxr" / "images")
    print("## `benchmarks/bench_applicability.py`\n")
    print(f"NIH chest radiographs: {len(refused)} of {n} refused by the content check "
          f"(false-refusal rate {100 * len(refused) / max(n, 1):.2f} %, target <= 1 %)")
    for name, why in refused:
        print(f"- {name}: {why}")
    rows = corpus_results(shared / "dicom-corpus" / "corpus")
    non_chest = [r for r in rows if not r[1]]
    judged = [r for r in non_chest if r[3] != "too small to judge"]
    pix = [r for r in judged if r[2]]
    print(f"\nDICOM corpus, non-chest images that decode: {len(non_chest)} "
          f"({len(non_chest) - len(judged)} under {MIN_CONTENT_SIDE} px, not judged by the pixels)")
    print(f"- refused by the pixels alone: {len(pix)} of {len(judged)} judged "
          f"({100 * len(pix) / max(len(judged), 1):.0f} %)")
    either = [r for r in non_chest if r[2] or r[3].startswith("header: ")]
    print(f"- refused by the pixels or the header: {len(either)} of {len(non_chest)} "
          f"({100 * len(either) / max(len(non_chest), 1):.0f} %)")
    print("\n| corpus file | chest | refused by pixels | reason |\n|---|---|---|---|")
    for name, chest, refused_px, why in rows:
        print(f"| {name} | {'yes' if chest else 'no'} | {'yes' if refused_px else 'no'} | "
              f"{why} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
