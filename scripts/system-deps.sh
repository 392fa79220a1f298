#!/usr/bin/env bash
# Install what the window needs from the system (Debian/Ubuntu): the libraries Qt's X11 plugin links to, and a
# font for Chinese (the lecture's 哈巴狗 / 单身狗 presets draw as boxes without one).
# Finds what is missing with ldd on the plugin itself and fontconfig, so nothing is installed when all is present.
set -euo pipefail
venv="${1:-.venv}"
qt="$("$venv/bin/python" -c 'import os, PySide6; print(os.path.dirname(PySide6.__file__))')/Qt"
missing=$( { ldd "$qt/plugins/platforms/libqxcb.so"; ldd "$qt/lib/libQt6XcbQpa.so.6"; } 2>/dev/null | awk '/not found/ {print $1}' | sort -u)
# libxcb-cursor is dlopen-ed at run time, so ldd does not list it.
ldconfig -p 2>/dev/null | grep -q libxcb-cursor.so.0 || missing="$missing libxcb-cursor.so.0"
fonts=""
if ! command -v fc-list >/dev/null || [ -z "$(fc-list :lang=zh family 2>/dev/null)" ]; then
  fonts="fonts-noto-cjk"
fi
[ -z "${missing// /}" ] && [ -z "$fonts" ] && exit 0
declare -A pkg=(
  [libxcb-icccm.so.4]=libxcb-icccm4 [libxcb-keysyms.so.1]=libxcb-keysyms1 [libxcb-cursor.so.0]=libxcb-cursor0
  [libxcb-image.so.0]=libxcb-image0 [libxcb-render-util.so.0]=libxcb-render-util0 [libxcb-randr.so.0]=libxcb-randr0
  [libxcb-shape.so.0]=libxcb-shape0 [libxcb-xinerama.so.0]=libxcb-xinerama0 [libxcb-xkb.so.1]=libxcb-xkb1
  [libxkbcommon-x11.so.0]=libxkbcommon-x11-0 [libxkbcommon.so.0]=libxkbcommon0 [libEGL.so.1]=libegl1
  [libGL.so.1]=libgl1 [libfontconfig.so.1]=libfontconfig1 [libdbus-1.so.3]=libdbus-1-3 [libX11-xcb.so.1]=libx11-xcb1
  [libxcb-sync.so.1]=libxcb-sync1 [libxcb-xfixes.so.0]=libxcb-xfixes0 [libxcb-shm.so.0]=libxcb-shm0
  [libxcb-render.so.0]=libxcb-render0 [libxcb-util.so.1]=libxcb-util1
)
packages=""
for lib in $missing; do packages="$packages ${pkg[$lib]:-}"; done
packages="$(echo $packages | tr ' ' '\n' | sort -u | tr '\n' ' ')"
if [ -n "${missing// /}" ] && [ -z "${packages// /}" ]; then
  echo "Qt needs libraries I cannot map to packages: $missing" >&2
fi
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
