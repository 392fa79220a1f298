#!/usr/bin/env bash
# Install LM Explorer from the release tarball: the app folder under ~/.local/share/lm-explorer/app (or
# --prefix DIR), a command in ~/.local/bin, the menu entry, icon and "Open with" for text files, and an
# uninstall.sh beside the app that removes all of it (and, with --caches, what the app wrote: converted models,
# caches, session). Nothing outside your home folder is touched; no root needed.
# Usage: ./install.sh [--prefix DIR] [--no-bin]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
prefix="$data/lm-explorer"
bin_dir="$HOME/.local/bin"
link_bin=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a folder" >&2; exit 2; }; prefix="$2"; shift 2;;
    --prefix=*) prefix="${1#--prefix=}"; shift;;
    --no-bin) link_bin=0; shift;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2;;
  esac
done
[ -x "$here/app/lm-explorer" ] || { echo "install.sh: $here/app/lm-explorer is missing: unpack the whole tarball" >&2; exit 2; }
apps="$data/applications"
icons="$data/icons/hicolor/scalable/apps"
# The folders this run creates (each missing ancestor up to HOME), so uninstall.sh can remove them when empty.
made=()
note_new() {
  local d="$1" chain=()
  while [ -n "$d" ] && [ "$d" != "/" ] && [ "$d" != "$HOME" ] && [ ! -e "$d" ]; do chain+=("$d"); d="$(dirname "$d")"; done
  made+=("${chain[@]}")
}
note_new "$prefix"; note_new "$apps"; note_new "$icons"
if [ "$link_bin" = 1 ]; then note_new "$bin_dir"; fi

mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
app="$prefix/app"
entry="$apps/lm-explorer.desktop"
icon="$icons/lm-explorer.svg"

echo "Installing LM Explorer into $app"
rm -rf "$app.new"
cp -a "$here/app" "$app.new"
rm -rf "$app"
mv "$app.new" "$app"
cp "$here/LICENSE" "$prefix/LICENSE"

mkdir -p "$apps" "$icons"
cp "$here/lm-explorer.svg" "$icon"
# The Exec key quotes the path (it may hold spaces); inside the quotes ", `, $ and \ are escaped with \, the
# format then escapes each \ once more, and % is doubled (it marks field codes).
quoted=$(printf '%s' "$app/lm-explorer" | sed -e 's/[\\"`$]/\\\\&/g' -e 's/%/%%/g')
EXEC_LINE="Exec=\"$quoted\" %F" awk '/^Exec=/ {print ENVIRON["EXEC_LINE"]; next} {print}' \
  "$here/lm-explorer.desktop" > "$entry.tmp"
mv "$entry.tmp" "$entry"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" 2>/dev/null || true
# Refresh an icon cache only where the desktop keeps one (creating one would be a file uninstall leaves).
[ -f "$data/icons/hicolor/icon-theme.cache" ] && command -v gtk-update-icon-cache >/dev/null \
  && gtk-update-icon-cache -q "$data/icons/hicolor" 2>/dev/null || true

bin_link=""
if [ "$link_bin" = 1 ]; then
  mkdir -p "$bin_dir"
  if [ -e "$bin_dir/lm-explorer" ] && [ ! -L "$bin_dir/lm-explorer" ]; then
    echo "install.sh: $bin_dir/lm-explorer exists and is not ours; left as it is (run $app/lm-explorer)" >&2
  else
    ln -sfn "$app/lm-explorer" "$bin_dir/lm-explorer"
    bin_link="$bin_dir/lm-explorer"
  fi
fi

# uninstall.sh knows exactly what this run wrote.
q() { printf '%q' "$1"; }
cat > "$prefix/uninstall.sh" <<EOF
#!/usr/bin/env bash
# Remove LM Explorer as installed by install.sh: the app, menu entry, icon and command.
# --caches also removes what the app wrote for you: converted models, joined GGUF files, features caches,
# fine-tune results kept in its folders, and the session and settings.
set -euo pipefail
caches=0
case "\${1:-}" in
  --caches) caches=1;;
  "") ;;
  -h|--help) sed -n '2,4p' "\$0" | sed 's/^# \{0,1\}//'; exit 0;;
  *) echo "uninstall.sh: unknown option \$1 (use --caches to remove caches and settings too)" >&2; exit 2;;
esac
if [ "\$caches" = 1 ] && [ -x $(q "$app/lm-explorer") ]; then
  # The app lists its own caches (and never names a file it did not write), wherever LM_EXPLORER_HOME or
  # XDG_CACHE_HOME put them.
  $(q "$app/lm-explorer") storage --clear all --yes || echo "uninstall.sh: could not clear the caches" >&2
fi
rm -f $(q "$entry") $(q "$icon")
if [ -n $(q "$bin_link") ] && [ -L $(q "$bin_link") ] && [ "\$(readlink $(q "$bin_link"))" = $(q "$app/lm-explorer") ]; then
  rm -f $(q "$bin_link")
fi
command -v update-desktop-database >/dev/null && update-desktop-database $(q "$apps") 2>/dev/null || true
rm -rf $(q "$app")
rm -f $(q "$prefix/LICENSE") $(q "$prefix/uninstall.sh")
rmdir $(q "$prefix") 2>/dev/null || true
# the folders install.sh made, deepest first, where nothing else has been put in them since
for d in $(for d in "${made[@]}"; do printf '%q ' "$d"; done); do rmdir "\$d" 2>/dev/null || true; done
echo "LM Explorer removed."
EOF
chmod +x "$prefix/uninstall.sh"

echo "Menu entry: $entry"
[ -n "$bin_link" ] && echo "Command:    $bin_link (make sure $bin_dir is on your PATH)"
echo "Uninstall:  $prefix/uninstall.sh  (add --caches to remove converted models, caches and settings too)"
