"""DICOM tag browser: a searchable tree of the header (sequences expandable)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHeaderView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Keywords hidden in de-identified mode (plus every value of VR PN).
IDENTIFYING_KEYWORDS = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs",
    "OtherPatientNames", "OtherPatientIDsSequence", "PatientAddress", "PatientTelephoneNumbers",
    "PatientMotherBirthName", "MedicalRecordLocator", "IssuerOfPatientID", "AccessionNumber",
    "InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
    "OperatorsName", "PhysiciansOfRecord", "NameOfPhysiciansReadingStudy", "StudyID",
    "PatientBirthName", "MilitaryRank", "EthnicGroup", "PatientComments", "DeviceSerialNumber",
})
HIDDEN = "(hidden: de-identified mode)"
MAX_VALUE_CHARS = 160


#: Value representations hidden in de-identified mode: names, and every date and time (study,
#: series, acquisition and birth dates identify a patient as well as a name does).
IDENTIFYING_VRS = frozenset({"PN", "DA", "DT", "TM"})
#: Widest the Name column gets: the Value column always keeps the rest of the width.
MAX_NAME_WIDTH = 200


def is_identifying(elem: Any) -> bool:
    return elem.VR in IDENTIFYING_VRS or getattr(elem, "keyword", "") in IDENTIFYING_KEYWORDS


class TagBrowser(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tags (name, number or value)")
        self.search.setClearButtonEnabled(True)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Tag", "Name", "VR", "Value"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        # the Value column takes whatever width is left: no horizontal scrolling; long values
        # are elided, the whole value is in the tooltip
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(24)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)
        self._header = None
        self.deidentified = False

    def set_header(
        self,
        header: Any,
        empty_text: str = "(no DICOM header: not a DICOM file)",
        notes: tuple[str, ...] = (),
    ) -> None:
        """Show ``header`` (None: nothing but ``empty_text``), and first, expanded, the reading
        ``notes`` of the image (what the loader noticed and handled: a fallback decoder, a
        tolerated encoding, an ignored attribute), so that nothing it did is silent."""
        self._header = header
        self._empty_text = empty_text
        self._notes = tuple(notes)
        self._rebuild()

    def set_deidentified(self, on: bool) -> None:
        self.deidentified = on
        self._rebuild()

    def _rebuild(self) -> None:
        self.tree.clear()
        notes = getattr(self, "_notes", ())
        if notes:
            # spanning the row: a note is a sentence, not a tag/name/VR/value
            group = QTreeWidgetItem([f"Reading notes ({len(notes)})", "", "", ""])
            group.setToolTip(0, "What the reader noticed in this file and how it handled it")
            self.tree.addTopLevelItem(group)
            group.setFirstColumnSpanned(True)
            for note in notes:
                item = QTreeWidgetItem([note, "", "", ""])
                item.setToolTip(0, note)
                group.addChild(item)
                item.setFirstColumnSpanned(True)
            group.setExpanded(True)
        if self._header is None:
            item = QTreeWidgetItem(["", getattr(self, "_empty_text", "(no DICOM header)"), "", ""])
            self.tree.addTopLevelItem(item)
            return
        self._add_dataset(self.tree.invisibleRootItem(), self._header)
        self._name_width = self.tree.sizeHintForColumn(1) + 12
        self._fit_columns()
        self.apply_filter(self.search.text())

    def _fit_columns(self) -> None:
        """Tag and VR as wide as their text, Name at most 40 % of what is left (elided, full
        name in the tooltip), Value the rest: the tree never scrolls sideways."""
        header = self.tree.header()
        fixed = header.sectionSize(0) + header.sectionSize(2)
        room = max(0, self.tree.viewport().width() - fixed)
        wanted = getattr(self, "_name_width", 120)
        self.tree.setColumnWidth(1, max(40, min(wanted, MAX_NAME_WIDTH, int(0.4 * room))))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._fit_columns()

    def _add_dataset(self, parent: QTreeWidgetItem, ds: Any) -> None:
        for elem in ds:
            if elem.keyword == "PixelData":
                continue
            tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
            name = elem.name
            if elem.VR == "SQ":
                item = QTreeWidgetItem([tag, name, "SQ", f"{len(elem.value)} item(s)"])
                parent.addChild(item)
                for i, sub in enumerate(elem.value, start=1):
                    sub_item = QTreeWidgetItem(["", f"Item {i}", "", ""])
                    item.addChild(sub_item)
                    self._add_dataset(sub_item, sub)
                continue
            if self.deidentified and is_identifying(elem):
                value = HIDDEN
            else:
                try:
                    value = elem.repval if elem.VR in ("OB", "OW", "OF", "OD", "UN") else str(elem.value)
                except Exception as exc:  # noqa: BLE001 - a malformed value is shown, not fatal
                    value = f"(unreadable: {exc})"
                if len(value) > MAX_VALUE_CHARS:
                    value = value[:MAX_VALUE_CHARS] + "..."
            item = QTreeWidgetItem([tag, name, elem.VR, value])
            item.setToolTip(1, name)
            item.setToolTip(3, value)
            parent.addChild(item)

    def apply_filter(self, text: str) -> None:
        needle = text.strip().lower()

        def visit(item: QTreeWidgetItem) -> bool:
            own = not needle or any(needle in item.text(c).lower() for c in range(4))
            child_match = False
            for i in range(item.childCount()):
                child_match = visit(item.child(i)) or child_match
            visible = own or child_match
            item.setHidden(not visible)
            if needle and child_match:
                item.setExpanded(True)
            return visible

        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            visit(root.child(i))

    def values(self) -> list[str]:
        """Every value shown in the tree (tests: nothing identifying in de-identified mode)."""
        out: list[str] = []

        def visit(item: QTreeWidgetItem) -> None:
            out.append(item.text(3))
            for i in range(item.childCount()):
                visit(item.child(i))

        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            visit(root.child(i))
        return out

    def find_items(self, name: str) -> list[QTreeWidgetItem]:
        return self.tree.findItems(name, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 1)
