#!/usr/bin/env bash
# Put LM Explorer in the desktop's application menu (and "Open with" for text and CSV files).
# Launches the built bundle (dist/lm-explorer/lm-explorer, from `make bundle`) when there is one, otherwise this
# checkout's venv (.venv/bin/lm-explorer, from `make setup`); refuses when neither exists.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bundle="$here/dist/lm-explorer/lm-explorer"
venv="$here/.venv/bin/lm-explorer"
if [ -x "$bundle" ]; then
  target="$bundle" kind="the bundle"
elif [ -x "$venv" ]; then
  target="$venv" kind="the venv"
else
  echo "install-desktop-entry: nothing to launch: neither $bundle nor $venv exists." >&2
  echo "Build one first: 'make bundle' (a self-contained folder) or 'make setup' (the venv)." >&2
  exit 1
fi
data="${XDG_DATA_HOME:-$HOME/.local/share}"
apps="$data/applications"
icons="$data/icons/hicolor/scalable/apps"
mkdir -p "$apps" "$icons"
cp "$here/packaging/lm-explorer.svg" "$icons/lm-explorer.svg"
# The Exec key quotes the path (it may hold spaces); inside the quotes ", `, $ and \ are escaped with \, and
# the .desktop format then escapes each \ once more.
quoted=$(printf '%s' "$target" | sed -e 's/[\\"`$]/\\\\&/g')
# A path is not a valid Exec key if it holds %: the format reserves it for field codes.
case "$target" in *%*) quoted=$(printf '%s' "$quoted" | sed -e 's/%/%%/g');; esac
entry="$apps/lm-explorer.desktop"
EXEC_LINE="Exec=\"$quoted\" %F" awk '/^Exec=/ {print ENVIRON["EXEC_LINE"]; next} {print}' \
  "$here/packaging/lm-explorer.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$entry"
fi
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" 2>/dev/null || true
echo "Installed $entry, launching $kind: $target"
