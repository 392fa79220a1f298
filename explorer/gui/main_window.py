"""The main window: a panel per lecture area, the shared text input, job progress, session persistence."""

from __future__ import annotations

import base64
import importlib
import logging
import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.fileio import read_text_files
from explorer.core.io.session import read_session, save_session
from explorer.core.models import catalog
from explorer.gui.context import AppContext
from explorer.gui.jobs import Job
from explorer.gui.panels.base import Panel
from explorer.gui.widgets.flow import make_readable
from explorer.gui.widgets.keyboard import tab_leaves
from explorer.gui.widgets.text_input import TextInput

log = logging.getLogger(__name__)

# (key, the panel's class under explorer.gui.panels, navigation label): one panel per lecture area.
PANELS = [
    ("models", "models.ModelsPanel", "Models"),
    ("masking", "masking.MaskingPanel", "Masking & objectives"),
    ("attention", "attention.AttentionPanel", "Attention"),
    ("embeddings", "embeddings.EmbeddingsPanel", "Embeddings"),
    ("heads", "heads.panel.HeadsPanel", "Heads & fine-tuning"),
    ("prompting", "prompting.panel.PromptingPanel", "Prompting"),
]
DEFAULT_MODELS = [catalog.MINILM, catalog.MINILM_MLM, catalog.SMOLLM2]


def _b64(data: QByteArray) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def _unb64(text: str) -> QByteArray:
    try:
        return QByteArray(base64.b64decode(text))
    except (ValueError, TypeError):
        return QByteArray()


class _SlotLayout(QVBoxLayout):
    """A panel's slot in its scroll area. It reports no height-for-width: the scroll area would otherwise size
    the panel to its preferred height and scroll even when the panel fits; it scrolls below the minimum only."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt naming
        return False


class MainWindow(QMainWindow):
    """Panels are created when first shown, so the window paints at once and before torch is imported."""

    firstPainted = Signal()

    def __init__(self, ctx: AppContext | None = None, restore: bool = True) -> None:
        super().__init__()
        self.ctx = ctx or AppContext(self)
        self.setWindowTitle("LM Explorer")
        # 1280×820, or the screen's size when it is smaller (a 1024×700 screen must show the whole window).
        screen = QGuiApplication.primaryScreen()
        room = screen.availableGeometry().size() if screen is not None else QSize(1280, 820)
        self.resize(min(1280, room.width()), min(820, room.height()))
        self.panels: dict[str, Panel] = {}
        self._pending_state: dict[str, dict] = {}
        self._restoring = False
        self._painted = False

        self.nav = QListWidget()
        self.nav.setFixedWidth(190)
        self.nav.setStyleSheet("QListWidget { font-size: 14px; } QListWidget::item { padding: 8px 6px; }")
        for key, _cls, label in PANELS:
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, key)
            self.nav.addItem(item)
        self.stack = QStackedWidget()
        self._slots: dict[str, QWidget] = {}
        for key, _cls, _label in PANELS:
            slot = QWidget()
            _SlotLayout(slot).setContentsMargins(0, 0, 0, 0)
            self._slots[key] = slot
            # A panel taller or wider than a small screen scrolls inside the window; its minimum size never
            # grows the window past the screen (where the window manager would cut it off).
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            scroll.setWidget(slot)
            scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # no focus mark: Tab goes on to the panel's controls
            self.stack.addWidget(scroll)
        self.nav.currentRowChanged.connect(self._show_row)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet("background: #fdecea; color: #611a15; padding: 6px; border-radius: 3px;")
        self.banner_close = QToolButton(text="✕")
        self.banner_close.setAutoRaise(True)
        self.banner_close.clicked.connect(self.hide_banner)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close)
        self.banner_box = QWidget()
        self.banner_box.setLayout(banner_row)
        self.banner_box.setVisible(False)

        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.banner_box)
        rv.addWidget(self.stack, 1)
        central = QWidget()
        h = QHBoxLayout(central)
        h.setContentsMargins(4, 4, 4, 4)
        h.addWidget(self.nav)
        h.addWidget(right, 1)
        self.setCentralWidget(central)

        self.text_input = TextInput(self.ctx)
        self.input_dock = QDockWidget("Input text", self)
        self.input_dock.setObjectName("input-dock")
        self.input_dock.setWidget(self.text_input)
        self.input_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, self.input_dock)
        self.resizeDocks([self.input_dock], [min(150, self.height() // 6)], Qt.Orientation.Vertical)

        # Keyboard: Tab from the panel list goes straight into the text, then on to its buttons.
        QWidget.setTabOrder(self.nav, self.text_input.edit)
        self._build_status_bar()
        self._build_menus()

        self.ctx.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.ctx.errorMessage.connect(self.show_banner)
        self.ctx.models.modelLoaded.connect(
            lambda name, secs: self.statusBar().showMessage(f"Loaded {name} in {secs:.1f} s.", 8000)
        )
        self.ctx.runner.jobStarted.connect(self._jobs_changed)
        self.ctx.runner.jobRunning.connect(self._jobs_changed)
        self.ctx.runner.jobFinished.connect(self._jobs_changed)
        self.ctx.runner.jobProgress.connect(self._job_progress)

        self._save_timer = QTimer(self, singleShot=True, interval=500)
        self._save_timer.timeout.connect(self.save_session)
        self.ctx.sessionChanged.connect(self._schedule_save)
        # Panel settings change without signals; sweep them into the session every few seconds.
        self._periodic = QTimer(self, interval=5000)
        self._periodic.timeout.connect(self.save_session)
        self._periodic.start()

        self._session, session_note = read_session() if restore else ({}, "")
        self._pending_files: list[str] = []  # session files still being read (kept in the session meanwhile)
        if session_note:
            self.show_banner(session_note)
        self._restore_layout()
        self.nav.setCurrentRow(self._initial_row())

    # ------------------------------------------------------------ panels

    def _initial_row(self) -> int:
        keys = [k for k, _c, _l in PANELS]
        key = self._session.get("panel")
        return keys.index(key) if key in keys else 0

    def _show_row(self, row: int) -> None:
        if row < 0:
            return
        key = PANELS[row][0]
        self.panel(key)
        self.stack.setCurrentIndex(row)
        self._schedule_save()

    def panel(self, key: str) -> Panel:
        """The panel for ``key``, created on first use."""
        if key not in self.panels:
            _key, path, _label = next(p for p in PANELS if p[0] == key)
            module_name, _dot, cls_name = path.rpartition(".")
            module = importlib.import_module(f"explorer.gui.panels.{module_name}")
            panel = getattr(module, cls_name)(self.ctx)
            make_readable(panel)
            tab_leaves(panel)
            self._slots[key].layout().addWidget(panel)
            self.panels[key] = panel
            state = self._session.get("panels", {}).get(key)
            if state:
                try:
                    reset = panel.apply_state(state)
                    if reset:  # those fields alone start from their defaults; one note for the panel
                        self.show_banner(f"Some saved settings of the {panel.title} panel could not be used and "
                                         f"start from their defaults: {', '.join(reset[:6])}"
                                         f"{', …' if len(reset) > 6 else ''}. Its other settings were restored.")
                except Exception as err:  # a damaged or odd state: the panel starts from its defaults, with a note
                    log.warning("could not restore the state of %s: %s: %s", key, type(err).__name__, err)
                    try:
                        panel.restore_state({})
                    except Exception as again:  # noqa: BLE001 - the panel's own defaults; logged, never fatal
                        log.warning("could not reset %s: %s", key, again)
                    self.show_banner(f"The saved settings of the {panel.title} panel could not be used "
                                     f"({type(err).__name__}); that panel starts from its defaults.")
        return self.panels[key]

    def current_panel(self) -> Panel:
        return self.panel(PANELS[max(0, self.nav.currentRow())][0])

    def show_panel(self, key: str) -> Panel:
        row = [k for k, _c, _l in PANELS].index(key)
        self.nav.setCurrentRow(row)
        return self.panel(key)

    def focus_panel(self, key: str) -> Panel:
        """Show panel ``key`` with the keyboard focus on its first control (Ctrl+1…6), so Tab goes on from there."""
        panel = self.show_panel(key)
        w = panel.nextInFocusChain()
        while w is not panel:
            if (panel.isAncestorOf(w) and w.isVisible() and w.isEnabled()
                    and w.focusPolicy() & Qt.FocusPolicy.TabFocus):
                w.setFocus(Qt.FocusReason.ShortcutFocusReason)
                break
            w = w.nextInFocusChain()
        return panel

    # ------------------------------------------------------------ chrome

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.job_label = QLabel()
        # One line of fixed width: a long phase name is shortened (full text in the tooltip), never widens the window.
        self.job_label.setFixedWidth(360)
        self.job_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self._job_text = ""
        self._phase: tuple[int, str, float] = (0, "", 0.0)  # job id, phase message, when it began
        self._bar_floor: tuple[int, int] = (0, 0)  # job id, the furthest its bar went (0-1000)
        # A phase of unknown length shows a busy bar and its running time, so a still bar never looks stuck.
        self._busy_timer = QTimer(self, interval=1000)
        self._busy_timer.timeout.connect(self._show_job_text)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the running model work")
        self.cancel_btn.clicked.connect(self.ctx.runner.cancel_all)
        self.cancel_btn.setVisible(False)
        bar = self.statusBar()
        # Permanent, so the temporary messages (model loads, results) never hide it.
        self.font_warning = QLabel()
        self.font_warning.setStyleSheet("color: #8a4b00;")
        self.font_warning.setVisible(False)
        bar.addPermanentWidget(self.font_warning)
        bar.addPermanentWidget(self.job_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_btn)
        bar.showMessage("Ready. The bundled models load in the background.")
        # Asked once the event loop runs: the font database is filled lazily and must not delay the first paint.
        QTimer.singleShot(0, self.check_fonts)

    def check_fonts(self) -> None:
        """Warn once, in the status bar, when no installed font can draw Chinese."""
        from explorer.gui.fonts import NO_CJK_FONT, cjk_font_families

        if self.font_warning.text() or cjk_font_families():
            return
        self.font_warning.setText("⚠ No font for Chinese: Chinese text shows as boxes.")
        self.font_warning.setToolTip(NO_CJK_FONT)
        self.font_warning.setVisible(True)
        self.statusBar().showMessage(NO_CJK_FONT, 20000)

    def focus_input(self) -> None:
        """Keyboard focus to the input text, from any panel."""
        self.input_dock.setVisible(True)
        self.text_input.edit.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _build_menus(self) -> None:
        self.file_menu = file_menu = self.menuBar().addMenu("&File")
        act = QAction("&Open text files…", self, shortcut=QKeySequence.StandardKey.Open)
        act.triggered.connect(self.text_input.open_dialog)
        file_menu.addAction(act)
        samples = self.text_input.samples_btn.menu()
        if samples is not None and not samples.isEmpty():
            file_menu.addMenu(samples).setText("Open a &sample text")
        act = QAction("&Export all charts of this panel…", self, shortcut=QKeySequence("Ctrl+Shift+E"))
        act.triggered.connect(self.export_all_dialog)
        file_menu.addAction(act)
        file_menu.addSeparator()
        act = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        act.triggered.connect(self.close)
        file_menu.addAction(act)
        view_menu = self.menuBar().addMenu("&View")
        for i, (key, _cls, label) in enumerate(PANELS):
            # "&&": a menu reads a single "&" as the mark of its shortcut letter ("Masking _objectives")
            act = QAction(label.replace("&", "&&"), self, shortcut=QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _=False, k=key: self.focus_panel(k))
            view_menu.addAction(act)
        view_menu.addSeparator()
        act = QAction("&Run this panel", self)
        act.setShortcuts([QKeySequence("F5"), QKeySequence("Ctrl+Return")])
        act.setToolTip("Presses the panel's main button (Show, Analyse, Compare, Run, Generate)")
        act.triggered.connect(self.run_current_panel)
        view_menu.addAction(act)
        view_menu.addAction(self.input_dock.toggleViewAction())
        act = QAction("Go to the input &text", self, shortcut=QKeySequence("Ctrl+L"))
        act.setToolTip("Moves the keyboard focus to the text every panel reads (showing it when hidden)")
        act.triggered.connect(self.focus_input)
        view_menu.addAction(act)
        help_menu = self.menuBar().addMenu("&Help")
        act = QAction("&About LM Explorer", self)
        act.triggered.connect(self.show_about)
        help_menu.addAction(act)

    def run_current_panel(self) -> None:
        """F5 / Ctrl+Return: the keyboard's way to the visible panel's main button."""
        button = self.current_panel().primary_button()
        if button is not None and button.isEnabled():
            button.click()

    def show_about(self) -> None:
        from explorer.gui.about import AboutDialog

        AboutDialog(self).exec()

    def show_banner(self, message: str) -> None:
        self.banner.setText(message)
        self.banner_box.setVisible(True)
        self.statusBar().showMessage(message.splitlines()[0][:200], 10000)

    def hide_banner(self) -> None:
        self.banner_box.setVisible(False)

    def _jobs_changed(self, _job=None) -> None:
        active = list(self.ctx.runner.active.values())
        busy = bool(active)
        self.progress.setVisible(busy)
        self.cancel_btn.setVisible(busy)
        if busy:
            job = self._shown_job(active)
            self._set_progress(job, job.fraction, self._describe_jobs(job, active))
        else:
            self._busy_timer.stop()
            self._set_job_text("")

    @staticmethod
    def _shown_job(active: list[Job]) -> Job:
        """The newest job that runs; a queued one only when none runs yet (it is then named as waiting)."""
        running = [j for j in active if j.started]
        return (running or active)[-1]

    @staticmethod
    def _describe_jobs(job: Job, active: list[Job], message: str = "") -> str:
        text = message or job.message or job.label
        if not job.started:
            text = f"Waiting to start: {job.label}"
        others = [j for j in active if j is not job]
        queued = sum(not j.started for j in others)
        parts = [f"{len(others) - queued} more running"] if len(others) > queued else []
        parts += [f"{queued} queued"] if queued else []
        return text + (f" (+{', '.join(parts)})" if parts else "")

    def _job_progress(self, job, fraction: float, message: str) -> None:
        active = list(self.ctx.runner.active.values())
        if active and job is self._shown_job(active):
            self._set_progress(job, fraction, self._describe_jobs(job, active, message))

    def _set_progress(self, job, fraction: float, message: str) -> None:
        """Show a job's phase: a percentage when the core knows it, else a busy bar and the seconds spent."""
        if fraction < 0:
            self.progress.setRange(0, 0)
            if not self._busy_timer.isActive():
                self._busy_timer.start()
        else:
            self._busy_timer.stop()
            # A job's bar never moves back: a later phase that reports less (a first load converting, then
            # loading) holds the bar where it was and names the new phase.
            floor = self._bar_floor[1] if self._bar_floor[0] == job.id else 0
            value = max(floor, int(min(1.0, fraction) * 1000))
            self._bar_floor = (job.id, value)
            self.progress.setRange(0, 1000)
            self.progress.setValue(value)
        if self._phase[:2] != (job.id, message):
            self._phase = (job.id, message, time.monotonic())
        self._set_job_text(message)

    def _show_job_text(self) -> None:
        active = list(self.ctx.runner.active.values())
        if not active or self._shown_job(active).fraction >= 0:
            self._busy_timer.stop()
            return
        self._set_job_text(self._job_text)

    def _set_job_text(self, text: str) -> None:
        self._job_text = text
        active = list(self.ctx.runner.active.values())
        shown = self._shown_job(active) if active else None
        if text and shown is not None and shown.fraction < 0 and self._phase[0] == shown.id:
            text = f"{text} ({time.monotonic() - self._phase[2]:.0f} s)"
        metrics = self.job_label.fontMetrics()
        # Cut at the end, where a reader expects it; the whole message is the tooltip.
        self.job_label.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight, self.job_label.width() - 4))
        self.job_label.setToolTip(text)

    def export_all_dialog(self) -> None:
        panel = self.current_panel()
        if not panel.charts():
            self.show_banner(f"The {panel.title} panel has no chart to export yet.")
            return
        folder = QFileDialog.getExistingDirectory(self, f"Export all charts of {panel.title} to a folder")
        if folder:
            self.export_all(folder)

    def export_all(self, folder: str) -> list[Path]:
        panel = self.current_panel()
        try:
            written = panel.export_all(folder)
        except (OSError, ValueError, RuntimeError) as err:
            self.show_banner(f"Could not export to {folder}: {err}. No half-written file was left.")
            return []
        self.statusBar().showMessage(f"Wrote {len(written)} files to {folder}", 8000)
        if getattr(panel, "export_note", ""):
            self.show_banner(panel.export_note)
        return written

    def open_paths(self, paths: list[str]) -> None:
        """Files given on the command line (a file manager's "Open with"), checked as dropped files are.

        A CSV/TSV/JSONL that reads as a labelled data set opens in the fine-tune lab; the other files go into
        the text box (the first one's text) and the corpus. Unreadable, binary or oversized files are reported
        in the text box's notice, as when dropped.
        """
        from explorer.core.io.errors import ExplorerError
        from explorer.core.tuning.datasets import load_task_data
        from explorer.gui.panels.heads.data_drop import DATA_SUFFIXES

        labelled: list[str] = []
        texts: list[str] = []
        for path in paths:
            if Path(path).suffix.lower() in DATA_SUFFIXES and Path(path).is_file():
                try:
                    load_task_data(path)
                    labelled.append(path)
                    continue
                except ExplorerError:  # not a labelled set (or unreadable): handled as a text file below
                    pass
            texts.append(path)
        if texts:
            self.text_input.open_files(texts)
        if labelled:
            heads = self.show_panel("heads")
            heads.tabs.setCurrentIndex(1)
            heads.set_data_file(labelled[0])
            rest = ", ".join(Path(p).name for p in labelled[1:])
            self.statusBar().showMessage(
                f"Opened {Path(labelled[0]).name} in the fine-tune lab."
                + (f" The lab takes one data set at a time; not opened: {rest}." if rest else ""), 15000)

    # ------------------------------------------------------------ session

    def _restore_layout(self) -> None:
        s = self._session
        rect = s.get("window_rect")
        if isinstance(rect, list) and len(rect) == 4 and all(isinstance(v, int) for v in rect):
            # The window's own area as it was (restoreGeometry works from the frame and, with no window manager or
            # another one, came back 25 px lower and 2 px narrower); moved back onto a screen if none shows it.
            geometry = QRect(*rect)
            screen = QGuiApplication.screenAt(geometry.center()) or QGuiApplication.primaryScreen()
            if screen is not None and not screen.availableGeometry().intersects(geometry):
                geometry.moveTopLeft(screen.availableGeometry().topLeft())
            self.setGeometry(geometry)
        elif s.get("geometry"):
            self.restoreGeometry(_unb64(s["geometry"]))
        if s.get("window_state"):
            self.restoreState(_unb64(s["window_state"]))
        if s.get("maximized"):
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)
        self._restoring = True
        if s.get("text"):
            self.text_input.set_text(s["text"])
        if s.get("files"):
            # Read in a job: a file on a slow drive, or one that became a named pipe, must not freeze the window.
            self._pending_files = list(s["files"])
            self.ctx.runner.submit(
                read_text_files, list(s["files"]), label="Reopening the session's files",
                on_result=self._session_files_read, on_finished=self._session_files_done,
            )
        self._restoring = False

    def _session_files_read(self, result: tuple) -> None:
        files, problems = result
        if files:
            self.ctx.add_files(files)
        if problems:
            self.statusBar().showMessage(f"Some files of the last session were not reopened: {problems[0]}", 10000)

    def _session_files_done(self) -> None:
        self._pending_files = []

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            # Queued, so it runs after this paint reaches the screen, never before it.
            QTimer.singleShot(0, self.firstPainted.emit)

    def after_first_paint(self) -> None:
        """Load the models of the last session (both bundled ones on a first run) in the background: catalogue
        names, and folders (fine-tuned models, opened folders) that still exist. The model libraries are imported
        first in any case, so a model the user loads later does not hold up the window either."""
        self.ctx.models.warm_up()
        names = self._session.get("models", DEFAULT_MODELS if not self._session else [])
        available = {e.name for e in catalog.list_models()}
        for name in names:
            if not isinstance(name, str):
                continue
            if name in available or Path(name).expanduser().exists():
                self.ctx.models.load(name)

    def _schedule_save(self) -> None:
        if not self._restoring:
            self._save_timer.start()

    def session_state(self) -> dict:
        panels = dict(self._session.get("panels", {}))
        for key, panel in self.panels.items():
            try:  # over the saved state: fields a newer version wrote are kept
                old = panels.get(key)
                panels[key] = {**(old if isinstance(old, dict) else {}), **panel.state_dict()}
            except Exception as err:
                log.warning("could not read the state of %s: %s: %s", key, type(err).__name__, err)
        return {
            "text": self.text_input.text(),  # not ctx.text: that lags behind typing by the input debounce
            "files": [f.path for f in self.ctx.files] + [p for p in self._pending_files
                                                          if p not in {f.path for f in self.ctx.files}],
            "models": list(self.ctx.models.loaded) + [n for n in self.ctx.models.loading if n not in self.ctx.models.loaded],
            "panel": PANELS[max(0, self.nav.currentRow())][0],
            "geometry": _b64(self.saveGeometry()),
            "window_rect": list(self.normalGeometry().getRect()) if self.isMaximized() else list(self.geometry().getRect()),
            "maximized": self.isMaximized(),
            "window_state": _b64(self.saveState()),
            "panels": panels,
        }

    def save_session(self) -> None:
        try:
            state = self.session_state()
            save_session(state)
            self._session.update({"panels": state["panels"]})
        except OSError as err:
            self.statusBar().showMessage(f"Could not save the session: {err}", 8000)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_session()
        self.ctx.runner.cancel_all()
        self.ctx.runner.wait(3000)
        super().closeEvent(event)
