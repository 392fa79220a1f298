"""The shared text input: type, paste, open or drag in text files (encoding detected, binary refused)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import InputError
from explorer.core.io.fileio import TEXT_SUFFIXES, TextFile, read_text_file
from explorer.core.io.limits import too_long_to_show
from explorer.gui.widgets.flow import FlowLayout

_ACRONYMS = {"bert": "BERT", "gpt": "GPT", "mlm": "MLM"}


def sample_title(stem: str) -> str:
    """A sample file's name as a menu reads it: "bert-paragraph" → "BERT paragraph", "english-bank" → "English bank"."""
    words = [_ACRONYMS.get(w.lower(), w) for w in stem.replace("_", "-").split("-") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


class _DropEdit(QPlainTextEdit):
    filesDropped = Signal(list)
    refused = Signal(str)  # a pasted or dropped text the box cannot show (why, in words)

    def insertFromMimeData(self, source) -> None:  # noqa: N802 - Qt naming
        """Paste and text drops: a text with a line too long to lay out is refused with a note (the clipboard
        still holds it), so a paste never freezes the window."""
        problem = too_long_to_show(source.text(), "The pasted text") if source.hasText() else ""
        if problem:
            self.refused.emit(problem + ".")
            return
        super().insertFromMimeData(source)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        if event.mimeData().hasUrls():
            paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
            event.acceptProposedAction()
            self.filesDropped.emit(paths)
        else:
            super().dropEvent(event)


class TextInput(QWidget):
    """Edits ``ctx.text``; dropped files replace the text (undoable with Ctrl+Z) and join ``ctx.files``."""

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.edit = _DropEdit()
        self.edit.setPlaceholderText(
            "Type or paste a text here, or drag in .txt, .md, .csv, .tsv or .jsonl files. Every panel reads this text."
        )
        self.edit.setAcceptDrops(True)
        # Tab and Shift+Tab move between controls; they never type into the user's text.
        self.edit.setTabChangesFocus(True)
        self.edit.filesDropped.connect(self.open_files)
        self.edit.refused.connect(lambda message: self.show_notice(message + " Your text is unchanged.", error=True))
        self.notice = QLabel()
        self.notice.setWordWrap(True)
        self.notice.setVisible(False)
        self.notice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count = QLabel()
        self.count.setStyleSheet("color: #666;")
        open_btn = QToolButton(text="Open…")
        open_btn.setToolTip("Open text files (also: drag them onto the text box)")
        open_btn.clicked.connect(self.open_dialog)
        clear_btn = QToolButton(text="Clear")
        clear_btn.setToolTip("Clear the text (Ctrl+Z brings it back)")
        clear_btn.clicked.connect(self._clear)
        self.samples_btn = QToolButton(text="Samples")
        self.samples_btn.setToolTip("Insert a sample text the project ships")
        self.samples_btn.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self._build_samples_menu()
        bar = FlowLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(open_btn)
        bar.addWidget(self.samples_btn)
        bar.addWidget(clear_btn)
        bar.addStretch(1)
        bar.addWidget(self.count)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.notice)
        # Debounce: panels react after typing pauses, not per keystroke.
        self._timer = QTimer(self, singleShot=True, interval=250)
        self._timer.timeout.connect(self._push)
        self.edit.textChanged.connect(self._timer.start)
        self.edit.textChanged.connect(self._update_count)
        ctx.text.changed.connect(self._pull)
        ctx.text.flush = self._flush

    def _build_samples_menu(self) -> None:
        from PySide6.QtWidgets import QMenu

        from explorer.core.io.paths import resources_dir

        menu = QMenu(self)
        for path in sorted((resources_dir() / "samples").glob("*.txt")):
            menu.addAction(sample_title(path.stem), lambda p=str(path): self.open_files([p]))
        self.samples_btn.setMenu(menu)
        self.samples_btn.setEnabled(not menu.isEmpty())

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        """Replace the text as one undoable edit, so the user's previous text is never lost."""
        cursor = self.edit.textCursor()
        cursor.beginEditBlock()
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.insertText(text)
        cursor.endEditBlock()
        self._push()

    def _clear(self) -> None:
        self.set_text("")
        self.show_notice("Cleared. Ctrl+Z brings the text back.")

    def _push(self) -> None:
        self._timer.stop()
        self.ctx.text.set_text(self.edit.toPlainText())

    def _flush(self) -> None:
        """Push an edit that still waits for typing to pause (a panel is reading the text now)."""
        try:
            waiting = self._timer.isActive()
        except RuntimeError:  # this box is gone (its window closed): nothing waits
            return
        if waiting:
            self._push()

    def _pull(self, text: str) -> None:
        if text != self.edit.toPlainText():
            self.edit.blockSignals(True)
            self.edit.setPlainText(text)
            self.edit.blockSignals(False)
            self._update_count()

    def _update_count(self) -> None:
        text = self.edit.toPlainText()
        self.count.setText(f"{len(text):,} characters, {len(text.split()):,} words")

    def show_notice(self, message: str, error: bool = False) -> None:
        self.notice.setText(message)
        self.notice.setStyleSheet(
            "background: #fdecea; color: #611a15; padding: 4px; border-radius: 3px;" if error
            else "background: #e8f4fd; color: #0d3c61; padding: 4px; border-radius: 3px;"
        )
        self.notice.setVisible(bool(message))

    def open_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in TEXT_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open text files", "", f"Text files ({patterns});;All files (*)")
        if paths:
            self.open_files(paths)

    def open_files(self, paths: list[str]) -> list[TextFile]:
        """Read files; good ones replace the text (first) and join the corpus, bad ones are reported."""
        good: list[TextFile] = []
        problems: list[str] = []
        notes: list[str] = []
        for p in paths:
            if Path(p).is_dir():
                problems.append(f"{Path(p).name} is a folder; drop text files.")
                continue
            try:
                tf = read_text_file(p)
            except InputError as err:
                problems.append(str(err))
                continue
            too_long = too_long_to_show(tf.text, Path(p).name)
            if too_long:  # read, but not shown: laying the line out would freeze the window; the file is unchanged
                problems.append(too_long + "; the file is unchanged.")
                continue
            good.append(tf)
            if tf.note:
                notes.append(tf.note)
        names = ", ".join(Path(t.path).name for t in good)
        message = " ".join(
            ([f"Opened {names}." + (f" {len(good)} files are in the corpus." if len(good) > 1 else "")] if good else [])
            + notes + problems
        )
        # The notice first: showing it resizes the text box, which lays out a long text it already holds again.
        self.show_notice(message + (" Your text is unchanged." if problems and not good else ""), error=bool(problems))
        if good:
            self.set_text(good[0].text)
            self.ctx.add_files(good)
        if problems:
            self.ctx.status(problems[0])
        return good
