#!/usr/bin/env bash
# Put LM Explorer in the desktop's application menu, launching this checkout's .venv.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/packaging/lm-explorer.svg" "$icons/lm-explorer.svg"
sed "s|^Exec=.*|Exec=$here/.venv/bin/lm-explorer %F|" "$here/packaging/lm-explorer.desktop" > "$apps/lm-explorer.desktop"
chmod +x "$apps/lm-explorer.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "Installed $apps/lm-explorer.desktop"
