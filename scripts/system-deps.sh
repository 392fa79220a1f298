#!/usr/bin/env bash
# Install what the window needs from the system (Debian/Ubuntu): the libraries Qt's X11 plugin links to, and a
# font for Chinese (the lecture's 哈巴狗 / 单身狗 presets draw as boxes without one).
# Finds what is missing with ldd on the plugin itself and fontconfig, so nothing is installed when all is present.
set -euo pipefail
venv="${1:-.venv}"
# The libraries Qt's X11 plugin misses, as Debian/Ubuntu packages: the window's own start-up check
# (explorer/gui/system_libs.py, which also tells a user who did not start it with `make run`).
packages="$("$venv/bin/python" -m explorer.gui.system_libs)"
fonts=""
if ! command -v fc-list >/dev/null || [ -z "$(fc-list :lang=zh family 2>/dev/null)" ]; then
  fonts="fonts-noto-cjk"
fi
[ -z "${packages// /}" ] && [ -z "$fonts" ] && exit 0
[ -n "${packages// /}" ] && echo "Qt needs system libraries to open a window: $packages"
[ -n "$fonts" ] && echo "No installed font covers Chinese; installing $fonts"
packages="$packages $fonts"
[ -z "${packages// /}" ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "Install them with your system's package manager, then run 'make run' again." >&2; exit 1
fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "Run as root: apt-get install -y $packages" >&2; exit 1; fi
$SUDO apt-get update -qq || true
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages
