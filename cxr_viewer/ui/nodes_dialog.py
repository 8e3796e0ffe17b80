"""Edit the DICOM nodes and the local AE settings (``cxr_viewer.net.config.NodeStore``).

The dialog only edits the core's store: validation is the core's (``Node``/``NetSettings`` raise
``ValueError`` with the message shown here), the file is written by ``NodeStore.save`` (atomic),
and passwords/tokens go to the ``SecretStore`` (OS keyring when available), never to the file.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cxr_viewer.net.config import (
    AUTH_KINDS,
    RETRIEVE_METHODS,
    NetSettings,
    Node,
    NodeStore,
    SecretStore,
)


class NodesDialog(QDialog):
    """List of nodes + a form for the selected one + the local settings."""

    def __init__(self, store: NodeStore, secrets: SecretStore, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("DICOM nodes")
        self.store = store
        self.secrets = secrets
        self._current: str | None = None
        self._renaming = False

        self.list = QListWidget()
        add = QPushButton("Add")
        remove = QPushButton("Remove")
        add.clicked.connect(self.add_node)
        remove.clicked.connect(self.remove_node)
        left = QVBoxLayout()
        left.addWidget(self.list)
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        left.addLayout(row)

        self.name = QLineEdit()
        self.ae = QLineEdit()
        self.host = QLineEdit()
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.url = QLineEdit()
        self.url.setPlaceholderText("https://pacs.example.org/dicom-web (optional)")
        self.retrieve = QComboBox()
        self.retrieve.addItems(list(RETRIEVE_METHODS))
        self.tls = QCheckBox("DIMSE over TLS")
        self.ca_file = self._file_field("CA certificates (PEM)")
        self.client_cert = self._file_field("client certificate (PEM)")
        self.client_key = self._file_field("client key (PEM)")
        self.auth = QComboBox()
        self.auth.addItems(list(AUTH_KINDS))
        self.username = QLineEdit()
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("unchanged" if secrets.persistent else "asked each run")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("AE title", self.ae)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("DICOMweb URL", self.url)
        form.addRow("Retrieve by", self.retrieve)
        form.addRow("", self.tls)
        form.addRow("CA file", self.ca_file)
        form.addRow("Client cert", self.client_cert)
        form.addRow("Client key", self.client_key)
        form.addRow("DICOMweb auth", self.auth)
        form.addRow("User name", self.username)
        form.addRow("Password / token", self.secret)
        keyring_note = QLabel(
            "Secrets are kept in the OS keyring." if secrets.persistent else
            "No OS keyring: secrets are kept for this run only and asked again next time."
        )
        keyring_note.setWordWrap(True)
        form.addRow("", keyring_note)
        node_box = QGroupBox("Node")
        node_box.setLayout(form)

        s = store.settings
        self.local_ae = QLineEdit(s.ae_title)
        self.listener_port = QSpinBox()
        self.listener_port.setRange(1, 65535)
        self.listener_port.setValue(s.listener_port)
        self.cache_limit = QSpinBox()
        self.cache_limit.setRange(1, 10_000_000)
        self.cache_limit.setSuffix(" MB")
        self.cache_limit.setValue(s.cache_limit_mb)
        self.accept_any = QCheckBox("Listener accepts any calling AE title")
        self.accept_any.setChecked(s.accept_any)
        local_form = QFormLayout()
        local_form.addRow("Our AE title", self.local_ae)
        local_form.addRow("Listener port", self.listener_port)
        local_form.addRow("Cache limit", self.cache_limit)
        local_form.addRow("", self.accept_any)
        local_box = QGroupBox("This workstation")
        local_box.setLayout(local_form)

        right = QVBoxLayout()
        right.addWidget(node_box)
        right.addWidget(local_box)
        body = QHBoxLayout()
        body.addLayout(left, 1)
        body.addLayout(right, 2)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(buttons)

        self.list.currentTextChanged.connect(self._select)
        for n in store.nodes:
            self.list.addItem(n.name)
        if store.nodes:
            self.list.setCurrentRow(0)

    def _file_field(self, what: str) -> QLineEdit:
        edit = QLineEdit()
        edit.setPlaceholderText(f"{what} (optional)")
        act = edit.addAction(self.style().standardIcon(self.style().StandardPixmap.SP_DirOpenIcon),
                             QLineEdit.ActionPosition.TrailingPosition)
        act.triggered.connect(lambda: self._browse(edit, what))
        return edit

    def _browse(self, edit: QLineEdit, what: str) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, what, edit.text(), "PEM (*.pem *.crt *.key);;All (*)"
        )
        if path:
            edit.setText(path)

    # ------------------------------------------------------------------ node form
    def _select(self, name: str) -> None:
        if self._renaming:
            return
        if self._current is not None and not self._commit_form():
            return
        node = self.store.get(name)
        self._current = name if node else None
        if node is None:
            return
        self.name.setText(node.name)
        self.ae.setText(node.ae_title)
        self.host.setText(node.host)
        self.port.setValue(int(node.port))
        self.url.setText(node.dicomweb_url)
        self.retrieve.setCurrentText(node.retrieve)
        self.tls.setChecked(node.tls)
        self.ca_file.setText(node.ca_file)
        self.client_cert.setText(node.client_cert)
        self.client_key.setText(node.client_key)
        self.auth.setCurrentText(node.auth)
        self.username.setText(node.username)
        self.secret.clear()

    def _form_node(self) -> Node:
        return Node(
            name=self.name.text().strip(), ae_title=self.ae.text().strip(),
            host=self.host.text().strip(), port=self.port.value(),
            dicomweb_url=self.url.text().strip().rstrip("/"),
            retrieve=self.retrieve.currentText(), tls=self.tls.isChecked(),
            ca_file=self.ca_file.text().strip(), client_cert=self.client_cert.text().strip(),
            client_key=self.client_key.text().strip(), auth=self.auth.currentText(),
            username=self.username.text().strip(),
        )

    def _commit_form(self) -> bool:
        """Validate the form into the store; False (with a message) when it is invalid."""
        if self._current is None:
            return True
        try:
            node = self._form_node()
        except ValueError as exc:
            QMessageBox.warning(self, "DICOM nodes", str(exc))
            return False
        if node.name != self._current:
            self.store.remove(self._current)
            self._renaming = True
            try:
                for it in self.list.findItems(self._current, Qt.MatchFlag.MatchExactly):
                    it.setText(node.name)
            finally:
                self._renaming = False
        self.store.put(node)
        if self.secret.text() and node.auth != "none":
            what = "password" if node.auth == "basic" else "token"
            self.secrets.set(node.name, what, self.secret.text())
            self.secret.clear()
        self._current = node.name
        return True

    def add_node(self) -> None:
        if not self._commit_form():
            return
        n = 1
        while self.store.get(f"PACS{n}"):
            n += 1
        node = Node(f"PACS{n}", "PACS", "localhost", 104)
        self.store.put(node)
        self._current = None
        self.list.addItem(node.name)
        self.list.setCurrentRow(self.list.count() - 1)

    def remove_node(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        name = item.text()
        self.store.remove(name)
        for what in ("password", "token"):
            self.secrets.delete(name, what)
        self._current = None
        self.list.takeItem(self.list.row(item))

    def save(self) -> None:
        if not self._commit_form():
            return
        try:
            self.store.settings = NetSettings(
                ae_title=self.local_ae.text().strip(),
                listener_port=self.listener_port.value(),
                accept_from=self.store.settings.accept_from,
                accept_any=self.accept_any.isChecked(),
                cache_limit_mb=self.cache_limit.value(),
                analyse_on_arrival=self.store.settings.analyse_on_arrival,
            )
            self.store.save()
        except (ValueError, OSError) as exc:
            QMessageBox.warning(self, "DICOM nodes", f"Not saved: {exc}")
            return
        self.accept()
