"""Analyse chest radiographs as they arrive: the AI on THE dedicated TensorFlow thread.

Every TensorFlow call of the process goes through the one executor of
:mod:`cxr_viewer.inference.tfthread` (the viewer's analysis uses the same one), so analysing
arrivals never adds a second TensorFlow thread. TensorFlow is imported there, when the model is
loaded (first arrival, or :meth:`ArrivalAnalyser.start`). Results go to
``<results>/<StudyInstanceUID>/<SOPInstanceUID>.json`` (written atomically) so they are ready when
the study is opened; images the model is not for (not CR/DX, not chest, lateral) get a JSON that
says why they were not analysed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxr_viewer.fsutil import atomic_write_text
from cxr_viewer.inference.applicability import RADIOGRAPH_MODALITIES
from cxr_viewer.net.cache import safe_name
from cxr_viewer.net.listener import Arrival

__all__ = ["ArrivalAnalyser"]


class ArrivalAnalyser:
    """Arrivals analysed one at a time, in order, on the process's TensorFlow thread."""

    def __init__(
        self,
        results_dir: str | Path,
        model: str | Path | None = None,
        on_result: Callable[[Arrival, dict[str, Any]], None] | None = None,
    ) -> None:
        self.results_dir = Path(results_dir)
        self.model = model
        self.on_result = on_result
        self._executor: Any = None
        self._bundle: Any = None
        self.ready = threading.Event()
        self.load_error: str | None = None

    def start(self) -> ArrivalAnalyser:
        """Join the TensorFlow executor and queue the model load (arrivals queue behind it)."""
        from cxr_viewer.inference.tfthread import acquire_executor

        self._executor = acquire_executor()
        self._executor.submit(self._load, owner=self)
        return self

    def submit(self, arrival: Arrival) -> None:
        """Queue an arrival (called from the listener's threads)."""
        if self._executor is None:
            raise RuntimeError("ArrivalAnalyser.start() first")
        self._executor.submit(self._job, arrival, owner=self)

    def stop(self, timeout: float = 30.0) -> None:
        """Drop what is still queued, wait for the running job, leave the executor."""
        from cxr_viewer.inference.tfthread import release_executor

        if self._executor is None:
            return
        self._executor.discard(self)
        self._executor.wait_idle(self, timeout)
        self._executor = None
        release_executor(timeout)

    def result_path(self, arrival: Arrival) -> Path:
        return self.results_dir / safe_name(arrival.study_uid) / f"{safe_name(arrival.sop_uid)}.json"

    def _load(self) -> None:
        from cxr_viewer.inference.bundle import load_any
        from cxr_viewer.paths import default_model_dir

        try:
            self._bundle = load_any(Path(self.model) if self.model else default_model_dir())
        except Exception as exc:  # noqa: BLE001 - reported in every result
            self.load_error = str(exc)
        self.ready.set()

    def _analyse(self, arrival: Arrival) -> dict[str, Any]:
        from cxr_viewer.errors import CxrError
        from cxr_viewer.io.loader import load_image

        out: dict[str, Any] = {
            "file": str(arrival.path), "study_uid": arrival.study_uid,
            "sop_uid": arrival.sop_uid, "received_at": arrival.received_at,
        }
        modality = arrival.modality.strip().upper()
        if modality and modality not in RADIOGRAPH_MODALITIES:
            # Not even opened: a CT or MR series would cost a decode per slice for nothing.
            out["not_analysed"] = f"modality {modality}; the model reads chest radiographs (CR/DX)"
            return out
        if self._bundle is None:
            out["error"] = f"model not loaded: {self.load_error}"
            return out
        try:
            image = load_image(arrival.path)
            pred = self._bundle.predict(image)
        except (CxrError, ValueError, OSError) as exc:
            out["not_analysed"] = getattr(exc, "cause", None) or str(exc)
            return out
        out.update(
            {
                "model_name": pred.model_name,
                "model_version": pred.model_version,
                "findings": [
                    {"finding": s.finding, "probability": s.probability,
                     "threshold": s.threshold, "flagged": s.flagged}
                    for s in pred.ranked() if s.probability is not None
                ],
                "warnings": list(pred.warnings),
            }
        )
        return out

    def _job(self, arrival: Arrival) -> None:
        result = self._analyse(arrival)
        result["analysed_at"] = time.time()
        try:
            atomic_write_text(self.result_path(arrival), json.dumps(result, indent=1) + "\n")
        except OSError as exc:
            result["write_error"] = str(exc)
        if self.on_result is not None:
            try:
                self.on_result(arrival, result)
            except Exception:  # noqa: BLE001 - a callback bug must not break the TF thread
                pass
