"""Stored AI results in the viewer: findings from our SR, heat maps from our Parametric Map and
the view from our GSPS, shown without running (or loading) the model; plus the audit events of
the GUI (image opened, analysis, stored result shown).

The science is in :mod:`cxr_viewer.io.stored_results` (Qt-free); this module only puts it on
screen. It attaches to the main window with a few hooks:

* ``open_paths``'s worker calls :func:`split_stored_results` on the scan problems (our objects
  are not "could not be opened" problems) and ``_on_scanned`` hands them to :meth:`set_results`;
* ``show_image`` asks :meth:`show_for` first and starts the analysis only when it returns False;
* ``_on_prediction`` calls :meth:`audit_prediction`.

The findings panel gets a banner (badge "STORED RESULT", model, version, date, a "Re-run AI"
button) inserted at its top; the tag browser gets the content tree of every SR that references
the image.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer import audit
from cxr_viewer.io.stored_results import (
    ContentNode,
    StoredResults,
    find_stored_results,
    sr_content_tree,
)

log = logging.getLogger(__name__)

BADGE = "STORED RESULT"


def split_stored_results(
    problems: list[tuple[str, str]], image_paths: list[str] = ()
) -> tuple[StoredResults, list[tuple[str, str]]]:
    """(stored results read from the problem files, the problems that remain) - worker thread.

    A folder scan lists SR / PR / Parametric Map files as problems ("no image", "stored
    result"); those that are result objects (ours or other software's) are taken out. Every
    other problem keeps the scan's reason.
    """
    candidates = [p for p, _reason in problems if Path(p).is_file()]
    results = find_stored_results(candidates)
    taken = {str(o.path) for o in (*results.reports, *results.heatmaps, *results.views)}
    taken |= {str(o.path) for o in results.foreign}
    if results.reports:  # which reports refer to an image that is here (headers only)
        import pydicom

        for path in image_paths:
            try:
                ds = pydicom.dcmread(
                    path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]
                )
            except Exception:  # noqa: BLE001 - PNG/JPEG or unreadable: no UID to match
                continue
            if ds.get("SOPInstanceUID"):
                results.image_sop_uids.add(str(ds.SOPInstanceUID))
    return results, [(p, r) for p, r in problems if p not in taken]


def foreign_text(obj: Any) -> str:
    """What the study browser says about another software's SR / PR / Parametric Map."""
    return (
        f"{obj.path}: not an image: {obj.sop_class} from other software"
        + (f" ({obj.title})" if obj.title else "")
        + " - listed, not interpreted"
    )


def orphan_warning(stored: Any) -> str:
    uid = stored.source_sop_uids[0] if stored.source_sop_uids else "unknown"
    return (
        f"the image this AI result refers to is not open (SOP Instance UID {uid}); "
        "open its folder to see the result on it"
    )


def orientation_from_export(rotation_k: int, flip_h: bool, flip_v: bool):  # -> Orientation
    """The viewer's Orientation for the export convention (flips first, then ``rotation_k``
    quarter turns clockwise): the inverse of ``ui.viewstate.export_orientation``."""
    from cxr_viewer.ui.viewstate import Orientation

    # R_cw^k V^v H^h; V = H R^2 and R^k H = H R^-k; the viewer shows F . R_ccw^k'
    mirrored = bool(flip_h) != bool(flip_v)
    k = (rotation_k + 2 * int(flip_v)) % 4
    if mirrored:  # R_cw^k H = H R_cw^-k = H R_ccw^k
        return Orientation(k, True, False)
    return Orientation((-k) % 4, False, False)


class StoredResultBanner(QFrame):
    """Badge + model, version, date + "Re-run AI"; hidden when the image has no stored result."""

    rerunRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("stored_result_banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.badge = QLabel(BADGE)
        self.badge.setObjectName("stored_result_badge")
        self.badge.setStyleSheet(
            "QLabel { background: #2f6fb0; color: white; font-weight: bold; padding: 1px 6px;"
            " border-radius: 3px; }"
        )
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.warning = QLabel("")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("QLabel { color: #c77700; }")
        self.warning.setVisible(False)
        self.rerun_button = QPushButton("Re-run AI")
        self.rerun_button.setToolTip("Analyse this image with the loaded model (not stored)")
        self.rerun_button.clicked.connect(self.rerunRequested)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.badge)
        top.addStretch(1)
        top.addWidget(self.rerun_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.text)
        lay.addWidget(self.warning)
        self.setVisible(False)

    def show_report(self, stored: Any, warning: str = "") -> None:
        report = stored.report
        date = stored.created.strftime("%Y-%m-%d %H:%M") if stored.created else "date unknown"
        lines = [f"{report.model_name} {report.model_version}".strip(), f"analysed {date}"]
        if report.operating_mode:
            lines.append(f"operating mode: {report.operating_mode}")
        if report.abnormal is not None:
            flag = " FLAG" if report.abnormal_flagged else ""
            lines.append(f"Abnormal: {100.0 * report.abnormal:.0f}%{flag}")
        lines.append(f"from {Path(stored.path).name}")
        self.text.setText("\n".join(lines))
        self.text.setToolTip(f"weights SHA-256 {report.weights_sha256 or 'not stated'}")
        self.warning.setText(warning)
        self.warning.setVisible(bool(warning))
        self.setVisible(True)


class StoredResultsController(QObject):
    """Shows stored results for the image on screen; records the GUI's audit events."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.results = StoredResults()
        self.showing = None  # the StoredReport on screen, if any
        self._audited_open: set[str] = set()
        self._audited_analysis: set[tuple[str, str]] = set()
        # Audit appends fsync: one background thread keeps them off the GUI thread, in order.
        self._audit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._deidentified = bool(getattr(window, "deidentified", False))
        self.banner = StoredResultBanner()
        self.banner.rerunRequested.connect(self.rerun)
        panel = getattr(window, "findings_panel", None)
        layout = panel.layout() if panel is not None else None
        if getattr(window, "has_findings_panel", False) and isinstance(layout, QBoxLayout):
            layout.insertWidget(0, self.banner)
        else:
            self.banner.setParent(window)  # no panel in this build: kept, never shown
        problems = getattr(getattr(window, "browser", None), "problems", None)
        if problems is not None and hasattr(problems, "itemActivated"):
            problems.itemActivated.connect(self._on_listed_activated)

    # ---- scan --------------------------------------------------------------------------
    def set_results(self, results: StoredResults | None) -> None:
        """New folder scanned: its stored results (GUI thread)."""
        self.results = results or StoredResults()
        browser = getattr(self.window, "browser", None)
        if browser is None:
            return
        for obj in self.results.foreign:
            browser.add_problem(str(obj.path), foreign_text(obj))
        # files that are no result objects stay in the scan's own problem list, with its reason
        orphans = self.results.orphans()
        for stored in orphans:
            browser.add_problem(str(stored.path), f"{stored.path}: {orphan_warning(stored)}")
        if orphans and not browser.image_paths():
            self.show_orphan(orphans[0])

    def listed(self) -> list[tuple[str, str]]:
        """Every result object of the last scan with what the user is told about it: the
        ``(path, text)`` pairs of ``MainWindow.resultObjectsListed`` (result objects are
        not images, so the user must hear about each one the window took out of the scan)."""
        r = self.results
        orphans = {str(o.path) for o in r.orphans()}
        out = [(str(o.path), foreign_text(o)) for o in r.foreign]
        for rep in r.reports:
            out.append((str(rep.path), f"{rep.path}: {orphan_warning(rep)}" if str(rep.path)
                        in orphans else f"{rep.path}: stored AI report (SR), shown on its image"))
        for hm in r.heatmaps:
            out.append((str(hm.path), f"{hm.path}: not an image: stored AI heat maps "
                                      "(Parametric Map), shown on their image"))
        for view in r.views:
            out.append((str(view.path), f"{view.path}: not an image: stored view (GSPS), "
                                        "applied to its image"))
        return out

    def show_orphan(self, stored: Any) -> None:
        """A stored result whose image is not open: its findings, with a warning, no image."""
        w = self.window
        self.showing = stored
        if getattr(w, "has_findings_panel", False):
            panel = w.findings_panel
            panel.clear()
            panel.model_label.setText(f"{stored.report.model_name} {stored.report.model_version}")
            panel.show_prediction(stored.report.to_prediction("stored-without-image"))
            panel.set_status("Stored result without its image")
        self.banner.show_report(stored, warning=orphan_warning(stored))

    # ---- an image is shown -------------------------------------------------------------
    def show_for(self, image: Any) -> bool:
        """Show the stored result of ``image`` if there is one; True when shown (no analysis)."""
        self._audit_open(image)
        self.showing = None
        self.banner.setVisible(False)
        self._add_content_trees(image)
        if not image.sop_uid:
            return False
        stored = self.results.report_for(image.sop_uid)
        view = self.results.view_for(image.sop_uid)
        if view is not None:
            self.apply_view(image, view)
        if stored is None:
            self._restore_panel()
            return False
        self.showing = stored
        w = self.window
        prediction = stored.report.to_prediction(image.image_id)
        w.prediction = prediction
        if getattr(w, "has_findings_panel", False):
            panel = w.findings_panel
            panel.clear()
            rows = getattr(panel, "rows", {})
            for f in stored.report.findings:
                if f.finding in rows and hasattr(rows[f.finding], "set_scored"):
                    rows[f.finding].set_scored(f.scored)
            panel.model_label.setText(f"{stored.report.model_name} {stored.report.model_version}")
            panel.show_prediction(prediction)
            panel.set_status("Stored result: the model was not run")
        self.banner.show_report(stored)
        if hasattr(w, "analysis_label"):
            w.analysis_label.setText("AI: stored result")
        maps = self.results.heatmaps_for(image.sop_uid)
        if maps is not None:
            w.runner.submit(
                "stored-heatmaps",
                maps.load,
                image.image_id,
                on_result=w._on_cams,
                on_error=lambda exc, p=maps.path: w.statusBar().showMessage(
                    f"Stored heat maps not shown: {p}: {exc}", 8000
                ),
            )
        self.audit_later(
            audit.ai_analysis_from_report, stored.report, image.sop_uid, image.study_uid,
            stored=True,
        )  # fmt: skip
        return True

    def _restore_panel(self) -> None:
        w = self.window
        if getattr(w, "has_findings_panel", False):
            w.findings_panel.set_card(getattr(w, "card", None))

    def rerun(self) -> None:
        """ "Re-run AI": analyse the image on screen with the loaded model."""
        w = self.window
        self.banner.setVisible(False)
        self.showing = None
        if w.current_image is None:
            return
        self._restore_panel()
        w.cams = None
        w._start_analysis(w.current_image)

    def apply_view(self, image: Any, stored_view: Any) -> None:
        """Window, inversion, orientation and measurements of a GSPS, on the image view."""
        from cxr_viewer.imaging.window import VOI

        view = stored_view.view_for(image.inverted_display)
        iv = self.window.view
        if view.window_center is not None and view.window_width is not None:
            try:
                voi = VOI.window(
                    view.window_center, view.window_width, view.voi_function,
                    label=view.explanation or "presentation state",
                )  # fmt: skip
            except ValueError as exc:
                log.warning("presentation state window not applied: %s", exc)
            else:
                iv.set_voi(voi, f"Presentation state: {voi.label}")
        iv.set_invert(view.invert)
        iv.set_orientation(orientation_from_export(view.rotation_k, view.flip_h, view.flip_v))
        iv.clear_measurements()
        for m in view.measurements:
            iv.add_measurement(m.r0, m.c0, m.r1, m.c1)
        self.window.statusBar().showMessage(
            f"Presentation state applied: {Path(stored_view.path).name}", 6000
        )

    def _on_listed_activated(self, item: Any) -> None:
        """A listed result object (ours or other software's) double-clicked: its tags, and for an
        SR its content tree, in the tag browser; our result without its image in the panel."""
        from cxr_viewer.ui.study_browser import PATH_ROLE

        path = str(item.data(PATH_ROLE) or "")
        self.show_object_tags(path)

    def show_object_tags(self, path: str) -> bool:
        """Tags (+ SR content tree) of a listed result object in the tag browser; True if shown."""
        known = [*self.results.reports, *self.results.heatmaps, *self.results.views]
        known += self.results.foreign
        if not any(str(o.path) == path for o in known):
            return False
        import pydicom

        w = self.window
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # noqa: BLE001 - listed, never fatal
            w.statusBar().showMessage(f"Cannot read {path}: {exc}", 8000)
            return False
        w.tags.set_header(ds)
        add_sr_content_tree(w.tags, path, deidentified=self._deidentified)
        if hasattr(w, "tags_dock"):
            w.tags_dock.show()
            w.tags_dock.raise_()
        orphan = next((r for r in self.results.orphans() if str(r.path) == path), None)
        if orphan is not None:
            self.show_orphan(orphan)
        return True

    # ---- tag browser ---------------------------------------------------------------------
    def deidentified_changed(self, on: bool) -> None:
        """De-identified mode toggled: audited (a privacy setting); the tag browser was rebuilt,
        so the SR content trees are added again (person names hidden when on)."""
        if on != self._deidentified:
            self.audit_later(audit.setting_changed, "deidentified_mode", self._deidentified, on)
        self._deidentified = on
        image = getattr(self.window, "current_image", None)
        if image is not None:
            self._add_content_trees(image)

    def _add_content_trees(self, image: Any) -> None:
        tags = getattr(self.window, "tags", None)
        if tags is None or not image.sop_uid:
            return
        srs = [r.path for r in self.results.reports if image.sop_uid in r.source_sop_uids]
        srs += [
            f.path
            for f in self.results.foreign
            if image.sop_uid in f.source_sop_uids and "SR" in f.sop_class
        ]
        for path in srs:
            add_sr_content_tree(tags, path, deidentified=self._deidentified)

    # ---- audit -----------------------------------------------------------------------------
    def audit_later(self, fn: Any, *args: Any, **kwargs: Any) -> Future:
        """Record an audit event on the audit thread (events keep their order)."""
        return self._audit_pool.submit(fn, *args, **kwargs)

    def flush_audit(self, timeout: float = 10.0) -> None:
        """Wait until every event asked for so far is written (tests, shutdown)."""
        self._audit_pool.submit(lambda: None).result(timeout)

    def _audit_open(self, image: Any) -> None:
        key = image.sop_uid or image.path
        if key in self._audited_open:
            return
        self._audited_open.add(key)
        source = "file" if image.sop_uid else f"{image.source_format} file"
        self.audit_later(
            audit.study_opened, image.study_uid, [image.sop_uid] if image.sop_uid else [],
            source=source,
        )  # fmt: skip

    def audit_prediction(self, prediction: Any) -> None:
        """A live analysis result (the model ran) for the image on screen."""
        from cxr_viewer.export.ai_report import report_from_prediction

        image = self.window.current_image
        if image is None or prediction.image_id != image.image_id:
            return
        key = (image.image_id, prediction.model_version)
        if key in self._audited_analysis:
            return
        self._audited_analysis.add(key)
        self.audit_later(
            audit.ai_analysis_from_report,
            report_from_prediction(prediction),
            image.sop_uid or f"file:{Path(image.path).name}",
            image.study_uid,
        )


def add_sr_content_tree(tags: Any, path: str | Path, *, deidentified: bool = False) -> None:
    """Add "SR content tree: <file>" as a top-level branch of the tag browser (person-name
    values hidden in de-identified mode, as the tag browser hides PN)."""
    import pydicom

    from cxr_viewer.ui.tag_browser import HIDDEN

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        root = sr_content_tree(ds)
    except Exception as exc:  # noqa: BLE001 - a broken SR is shown as such, never fatal
        root = ContentNode(f"(unreadable: {exc})")
    if root is None:
        return
    top = QTreeWidgetItem(["", f"SR content tree: {Path(path).name}", "SR", ""])
    top.setData(0, Qt.ItemDataRole.UserRole, str(path))

    def add(parent: QTreeWidgetItem, node: ContentNode) -> None:
        # the tag browser's columns: (tag: none, name: concept name, VR: value type, value);
        # the relationship ("contains", "has concept mod"...) as the name's tooltip
        value = HIDDEN if deidentified and node.value_type == "PNAME" else node.value
        item = QTreeWidgetItem(["", node.name, node.value_type, value])
        if node.relation:
            item.setToolTip(1, f"{node.relation} {node.value_type}")
        parent.addChild(item)
        for child in node.children:
            add(item, child)

    add(top, root)
    tags.tree.insertTopLevelItem(0, top)  # above the header tags: what the user came for
    top.setExpanded(True)
    for i in range(top.childCount()):  # the document and its first level (groups) open
        top.child(i).setExpanded(True)
    tags.tree.resizeColumnToContents(1)
