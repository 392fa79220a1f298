"""What all panels share: the job runner, the loaded models, the shared input text and dropped files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from explorer.core.io.fileio import TextFile
from explorer.core.io.redaction import redact
from explorer.gui.jobs import Job, JobRunner


class ModelStore(QObject):
    """Loaded models by name; loading and unloading go through the job runner."""

    changed = Signal()
    modelLoaded = Signal(str, float)  # name, seconds
    loadFailed = Signal(str, str)  # name, message

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.loaded: dict[str, Any] = {}  # name -> explorer.core.models.LoadedModel
        self.loading: dict[str, Job] = {}
        # Callbacks of callers who asked for a model already loading: each runs once it has loaded (a preset
        # chosen during the start-up load said "loading it…" for good).
        self.waiting: dict[str, list[Callable[[Any], None]]] = {}
        self.trusted: set[str] = set()

    def warm_up(self) -> Job | None:
        """Import the model libraries in the background (once), in steps that leave the window responsive;
        a load started meanwhile waits for it (see explorer.core.models.warmup)."""
        from explorer.core.models import warmup

        if warmup.is_warm():
            return None
        return self.runner.submit(warmup.warm_up, label="Preparing the model libraries")

    def get(self, name: str | None) -> Any | None:
        return self.loaded.get(name) if name else None

    def names(self, kinds: tuple[str, ...] | None = None, heads: tuple[str, ...] | None = None) -> list[str]:
        out = []
        for name, lm in self.loaded.items():
            if kinds and lm.kind not in kinds:
                continue
            if heads and not set(heads) & set(lm.heads):
                continue
            out.append(name)
        return out

    def load(
        self,
        name: str,
        on_done: Callable[[Any], None] | None = None,
        trust_remote_code: bool = False,
        allow_big: bool = False,
    ) -> Job | None:
        """Load ``name`` in the background (no-op when it is loaded or loading).

        A model larger than the free memory is not loaded until the user agrees (``ask_big``).
        """
        if name in self.loaded:
            if on_done:
                on_done(self.loaded[name])
            return None
        if name in self.loading:
            if on_done:
                self.waiting.setdefault(name, []).append(on_done)
            return self.loading[name]
        from explorer.core.models.memory import TooBigError

        def done(lm: Any) -> None:
            if isinstance(lm, TooBigError):
                self.loading.pop(name, None)
                if self.ask_big(lm):
                    self.load(name, on_done, trust_remote_code, allow_big=True)
                else:
                    self.waiting.pop(name, None)
                    self.loadFailed.emit(name, f"Not loaded: {lm}")
                return
            self.loaded[name] = lm
            self.changed.emit()
            self.modelLoaded.emit(name, lm.load_seconds)
            for callback in ([on_done] if on_done else []) + self.waiting.pop(name, []):
                callback(lm)

        def finished() -> None:
            if self.loading.get(name) is job:
                self.loading.pop(name, None)
                if name not in self.loaded:  # failed or cancelled: a later load starts its own waiting list
                    self.waiting.pop(name, None)
            self.changed.emit()

        job = self.runner.submit(
            _load_or_too_big, name, label=f"Loading {name}",
            trust_remote_code=trust_remote_code or name in self.trusted, allow_big=allow_big,
            on_result=done, on_error=lambda msg: self.loadFailed.emit(name, msg), on_finished=finished,
        )
        self.loading[name] = job
        self.changed.emit()
        return job

    def ask_big(self, err: Any) -> bool:
        """Ask whether to load a model larger than the free memory anyway (``err`` is a TooBigError)."""
        from PySide6.QtWidgets import QApplication, QMessageBox

        answer = QMessageBox.question(
            QApplication.activeWindow(), "Model larger than free memory", f"{err}\n\nLoad it anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def unload(self, name: str) -> None:
        if self.loaded.pop(name, None) is not None:
            import gc

            gc.collect()
            self.changed.emit()


def _load_or_too_big(name: str, **kwargs: Any) -> Any:
    """load_model, but a TooBigError comes back as the result so the GUI thread can ask the user."""
    from explorer.core.models.loading import load_model
    from explorer.core.models.memory import TooBigError

    try:
        return load_model(name, **kwargs)
    except TooBigError as err:
        return err


class SharedText(QObject):
    """The input text every panel reads; the text box writes it."""

    changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        # The text box's edits reach here after typing pauses; a reader first takes any edit still waiting, so
        # F5 pressed right after a paste analyses the pasted text (it read "the text is empty").
        self.flush: Callable[[], None] | None = None

    def text(self) -> str:
        if self.flush is not None:
            self.flush()
        return self._text

    def set_text(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.changed.emit(text)


class AppContext(QObject):
    """Handed to every panel: shared state plus ``status`` and ``error`` to speak to the user."""

    filesChanged = Signal()
    statusMessage = Signal(str)
    errorMessage = Signal(str)
    sessionChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.models = ModelStore(self.runner, self)
        self.text = SharedText(self)
        self.files: list[TextFile] = []
        self.text.changed.connect(lambda _t: self.sessionChanged.emit())
        self.models.changed.connect(self.sessionChanged.emit)
        self.filesChanged.connect(self.sessionChanged.emit)

    def status(self, message: str) -> None:
        self.statusMessage.emit(redact(message))

    def error(self, message: str) -> None:
        self.errorMessage.emit(redact(message))

    def add_files(self, files: list[TextFile]) -> None:
        known = {f.path for f in self.files}
        self.files.extend(f for f in files if f.path not in known)
        self.filesChanged.emit()

    def remove_file(self, path: str) -> None:
        self.files = [f for f in self.files if f.path != path]
        self.filesChanged.emit()
