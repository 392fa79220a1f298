"""Start the window. Nothing here imports torch: the window paints first, models load in the background."""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str] | None = None, files: list[str] | None = None) -> int:
    """Open the window; ``files`` (default: the arguments Qt leaves over) open as if dropped on it."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")
    ):
        print(
            "lm-explorer: no display found, so the window cannot open. Run it on a desktop, with 'xvfb-run', "
            "or use a command (lm-explorer --help).",
            file=sys.stderr,
        )
        return 2
    from explorer.gui.system_libs import install_line, missing_xcb_libraries, uses_xcb

    missing = missing_xcb_libraries() if uses_xcb() else []
    if missing:  # Qt would abort the process here with a message that does not say how to fix it
        print(f"lm-explorer: the window needs system libraries that are not installed ({', '.join(missing)}); "
              f"install them with: {install_line(missing)}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from explorer.core.io.redaction import RedactingFilter

    for handler in logging.getLogger().handlers:  # no key reaches the log, whatever a server echoed
        handler.addFilter(RedactingFilter())
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from explorer.core.io.paths import resources_dir

    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv if files is None else sys.argv[:1])
    app.setApplicationName("LM Explorer")
    app.setOrganizationName("lm-explorer")
    app.setDesktopFileName("lm-explorer")
    icon = resources_dir() / "icons" / "lm-explorer.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    from explorer.gui.main_window import MainWindow

    window = MainWindow()
    # Models (and so torch) load only once the window is on screen.
    window.firstPainted.connect(window.after_first_paint)
    window.show()
    if files is None:  # started as lm-explorer-gui FILE...: Qt has taken out its own options
        files = app.arguments()[1:]
    if files:
        window.open_paths(files)
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
