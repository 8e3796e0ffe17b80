"""DICOM tag browser: a searchable tree of the header (sequences expandable)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

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


def is_identifying(elem: Any) -> bool:
    return elem.VR == "PN" or getattr(elem, "keyword", "") in IDENTIFYING_KEYWORDS


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
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self.search.textChanged.connect(self.apply_filter)
        self._header = None
        self.deidentified = False

    def set_header(self, header: Any) -> None:
        self._header = header
        self._rebuild()

    def set_deidentified(self, on: bool) -> None:
        self.deidentified = on
        self._rebuild()

    def _rebuild(self) -> None:
        self.tree.clear()
        if self._header is None:
            item = QTreeWidgetItem(["", "(no DICOM header: not a DICOM file)", "", ""])
            self.tree.addTopLevelItem(item)
            return
        self._add_dataset(self.tree.invisibleRootItem(), self._header)
        for col in range(3):
            self.tree.resizeColumnToContents(col)
        self.apply_filter(self.search.text())

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
            parent.addChild(QTreeWidgetItem([tag, name, elem.VR, value]))

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
