"""Whether the system can draw the lecture's Chinese: without a CJK font, 哈巴狗 / 单身狗 draw as boxes."""

from __future__ import annotations

from PySide6.QtGui import QFontDatabase

CJK_WRITING_SYSTEMS = (
    QFontDatabase.WritingSystem.SimplifiedChinese,
    QFontDatabase.WritingSystem.TraditionalChinese,
    QFontDatabase.WritingSystem.Japanese,
)
NO_CJK_FONT = (
    "No installed font covers Chinese, so Chinese text draws as boxes. Install a CJK font "
    "(Debian/Ubuntu: sudo apt-get install fonts-noto-cjk) and restart."
)


def cjk_font_families() -> list[str]:
    """Installed font families that cover Chinese or Japanese (Qt's table, filled from fontconfig on Linux)."""
    families: list[str] = []
    for system in CJK_WRITING_SYSTEMS:
        families += [f for f in QFontDatabase.families(system) if f not in families]
    return families
