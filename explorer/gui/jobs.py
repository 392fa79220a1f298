"""One job runner for all model work: functions run in a worker thread, results come back as signals.

A job function is called as ``fn(*args, progress=..., cancel=..., [partial=...], **kwargs)`` (the core's
protocol); its callbacks run in the GUI thread, so the window never freezes and never touches a model.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from explorer.core.io.errors import Cancelled, ExplorerError
from explorer.core.io.redaction import redact

log = logging.getLogger(__name__)


class _JobSignals(QObject):
    progress = Signal(object, float, str)
    running = Signal(object)  # the job left the queue: a worker thread runs it now
    partial = Signal(object, object)
    result = Signal(object, object)
    error = Signal(object, str)
    cancelled = Signal(object)
    finished = Signal(object)


class Job(QRunnable):
    """A unit of model work; ``cancel()`` asks the core function to stop at its next check."""

    _ids = itertools.count(1)

    def __init__(self, fn: Callable, args: tuple, kwargs: dict, label: str, want_partial: bool) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.id = next(self._ids)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.label = label
        self.want_partial = want_partial
        self.cancel_event = threading.Event()
        self.signals = _JobSignals()  # created in the GUI thread, so its signals queue into it
        self.callbacks: dict[str, Callable | None] = {}
        self.fraction = 0.0
        self.message = ""
        self.done = False
        self.started = False  # set by the worker thread when the job leaves the queue
        self._last_emit = 0.0
        self._last_message = ""

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def _progress(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        # Throttle to ~20 updates/s so a tight loop cannot flood the GUI thread; a new phase (message) always
        # gets through, or the bar would name a phase that ended long ago.
        if fraction >= 1.0 or message != self._last_message or now - self._last_emit > 0.05:
            self._last_emit = now
            self._last_message = message
            self.signals.progress.emit(self, float(fraction), message)

    def run(self) -> None:
        try:
            self._run()
        except RuntimeError:  # the app quit while this job ran: its signals object is gone
            log.debug("job %s outlived the application", self.label)

    def _run(self) -> None:
        self.started = True
        self.signals.running.emit(self)
        kwargs = dict(self.kwargs, progress=self._progress, cancel=self.cancel_event)
        if self.want_partial:
            kwargs["partial"] = lambda obj: self.signals.partial.emit(self, obj)
        try:
            result = self.fn(*self.args, **kwargs)
        except Cancelled:
            self.signals.cancelled.emit(self)
        except ExplorerError as err:
            self.signals.error.emit(self, redact(str(err)))
        except MemoryError:
            self.signals.error.emit(self, f"{self.label}: the computer ran out of memory. Try a shorter text or a smaller model.")
        except Exception as err:  # a bug or a library failure: report it, keep the app alive
            log.error("job %s failed:\n%s", self.label, redact(traceback.format_exc()))
            self.signals.error.emit(self, redact(f"{self.label} failed: {type(err).__name__}: {err}"))
        else:
            self.signals.result.emit(self, result)
        finally:
            self.signals.finished.emit(self)


class JobRunner(QObject):
    """Runs jobs on a small thread pool and relays their signals to callbacks in the GUI thread."""

    jobStarted = Signal(object)  # submitted (it may wait in the queue)
    jobRunning = Signal(object)  # a worker thread started it
    jobProgress = Signal(object, float, str)
    jobFinished = Signal(object)
    jobFailed = Signal(object, str)

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.active: dict[int, Job] = {}

    def submit(
        self,
        fn: Callable,
        *args: Any,
        label: str = "Working",
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        on_progress: Callable[[float, str], None] | None = None,
        on_partial: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Job:
        job = Job(fn, args, kwargs, label, want_partial=on_partial is not None)
        job.callbacks = {
            "result": on_result, "error": on_error, "progress": on_progress,
            "partial": on_partial, "finished": on_finished, "cancelled": on_cancelled,
        }
        s = job.signals
        s.progress.connect(self._on_progress)
        s.running.connect(self.jobRunning)
        s.partial.connect(self._on_partial)
        s.result.connect(self._on_result)
        s.error.connect(self._on_error)
        s.cancelled.connect(self._on_cancelled)
        s.finished.connect(self._on_finished)
        self.active[job.id] = job
        self.jobStarted.emit(job)
        self.pool.start(job)
        return job

    def cancel_all(self) -> None:
        for job in list(self.active.values()):
            job.cancel()

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)

    @staticmethod
    def _call(job: Job, name: str, *args: Any) -> None:
        cb = job.callbacks.get(name)
        if cb is None:
            return
        try:
            cb(*args)
        except Exception:  # a panel bug must not take the runner down
            log.error("callback %s of %s failed:\n%s", name, job.label, traceback.format_exc())

    @Slot(object, float, str)
    def _on_progress(self, job: Job, fraction: float, message: str) -> None:
        job.fraction, job.message = fraction, message
        self.jobProgress.emit(job, fraction, message)
        self._call(job, "progress", fraction, message)

    @Slot(object, object)
    def _on_partial(self, job: Job, obj: object) -> None:
        self._call(job, "partial", obj)

    @Slot(object, object)
    def _on_result(self, job: Job, result: object) -> None:
        self._call(job, "result", result)

    @Slot(object, str)
    def _on_error(self, job: Job, message: str) -> None:
        self.jobFailed.emit(job, message)
        self._call(job, "error", message)

    @Slot(object)
    def _on_cancelled(self, job: Job) -> None:
        self._call(job, "cancelled")

    @Slot(object)
    def _on_finished(self, job: Job) -> None:
        job.done = True
        self.active.pop(job.id, None)
        self._call(job, "finished")
        self.jobFinished.emit(job)
