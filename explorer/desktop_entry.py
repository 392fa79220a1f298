"""The desktop menu entry for an installed LM Explorer (``lm-explorer --install-desktop-entry``).

A pip install has no .desktop file (the wheel carries only the package), so the app writes one itself, with
the icon from its resources, into ``$XDG_DATA_HOME`` (``~/.local/share``). ``packaging/lm-explorer.desktop`` is
this same entry with ``Exec=lm-explorer %F`` (a test keeps them equal); the bundle's install.sh uses that file.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ENTRY = """[Desktop Entry]
Type=Application
Name=LM Explorer
GenericName=Language model explorer
Comment=See and run what BERT and its family and GPT-3 explain: masking, attention, embeddings, heads, prompting
Exec={exec} %F
Icon=lm-explorer
Terminal=false
Categories=Education;ArtificialIntelligence;
MimeType=text/plain;text/markdown;text/csv;text/tab-separated-values;application/x-ndjson;application/jsonl;
Keywords=BERT;GPT;transformer;attention;embedding;NLP;
StartupWMClass=lm-explorer
"""


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def entry_paths() -> tuple[Path, Path]:
    """Where the entry and its icon go: (…/applications/lm-explorer.desktop, …/icons/…/lm-explorer.svg)."""
    data = data_home()
    return data / "applications" / "lm-explorer.desktop", data / "icons" / "hicolor" / "scalable" / "apps" / "lm-explorer.svg"


def launcher() -> list[str]:
    """The command that starts this install: the bundle's executable, the ``lm-explorer`` script beside this
    interpreter (a venv's bin), the one on PATH, or this interpreter with ``-m explorer``."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    beside = Path(sys.executable).parent / "lm-explorer"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("lm-explorer")
    return [found] if found else [sys.executable, "-m", "explorer"]


def exec_key(argv: list[str]) -> str:
    """``argv`` as a desktop entry's Exec value: each part quoted, with the format's escapes (", `, $ and \\
    escaped inside the quotes, every \\ then doubled by the key's own escaping, % doubled)."""
    parts = []
    for arg in argv:
        inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        parts.append('"' + inner.replace("\\", "\\\\").replace("%", "%%") + '"')
    return " ".join(parts)


def install_desktop_entry(argv: list[str] | None = None) -> tuple[Path, Path]:
    """Write the menu entry (launching ``argv``, default :func:`launcher`) and the icon; their paths."""
    from explorer.core.io.paths import resources_dir

    entry, icon = entry_paths()
    entry.parent.mkdir(parents=True, exist_ok=True)
    icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resources_dir() / "icons" / "lm-explorer.svg", icon)
    tmp = entry.with_suffix(".tmp")
    tmp.write_text(ENTRY.format(exec=exec_key(argv or launcher())), encoding="utf-8")
    tmp.replace(entry)
    return entry, icon


def uninstall_desktop_entry() -> list[Path]:
    """Remove the entry and icon :func:`install_desktop_entry` wrote; the paths removed."""
    removed = []
    for path in entry_paths():
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed
