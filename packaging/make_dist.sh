#!/usr/bin/env bash
# Turn the built bundle (dist/lm-explorer/, from `make bundle`) into the release tarball
# dist/lm-explorer-VERSION-linux-x86_64.tar.gz: the app folder, install.sh (which writes uninstall.sh), the
# menu entry template, the icon, LICENSE and README.txt (requirements with the build's glibc, install, disk use,
# uninstall), in one top folder.
# Usage: packaging/make_dist.sh VERSION [BUNDLE_DIR] [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$1"
bundle="${2:-$root/dist/lm-explorer}"
out="${3:-$root/dist}"
[ -x "$bundle/lm-explorer" ] || { echo "make_dist: no bundle at $bundle: run 'make bundle' first" >&2; exit 2; }
name="lm-explorer-$version-linux-$(uname -m)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$out"
cp -a "$bundle" "$stage/$name/app"
cp "$root/packaging/install.sh" "$stage/$name/install.sh"
cp "$root/packaging/lm-explorer.desktop" "$root/packaging/lm-explorer.svg" "$root/LICENSE" "$stage/$name/"
chmod +x "$stage/$name/install.sh"
# A PyInstaller bundle runs on the glibc it was built against or a newer one: the build machine's sets the floor.
glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"
glibc="${glibc:-$(ldd --version 2>/dev/null | awk 'NR == 1 {print $NF}')}"
case "$glibc" in
  2.36) where="Debian 12 and later, Ubuntu 23.04 and later (24.04 LTS included), Fedora 37 and later,
  RHEL / Rocky / Alma 10, openSUSE Tumbleweed, Arch. Not Ubuntu 22.04 (2.35) or RHEL 9 (2.34)";;
  *) where="check yours with: ldd --version";;
esac
cat > "$stage/$name/README.txt" <<TXT
LM Explorer $version for Linux $(uname -m)

Requirements
  glibc $glibc or newer (ldd --version shows yours), which means:
  $where.
  Where it is older, install with pip instead (see the project's README).
  The window needs the X11 libraries a desktop has; when one is missing, lm-explorer says which package adds it.

Install
  ./install.sh                  the app in ~/.local/share/lm-explorer/app, the menu entry with "Open with" for
                                text files, the icon, and ~/.local/bin/lm-explorer
  ./install.sh --prefix DIR     the app in DIR/app instead (--no-bin: no ~/.local/bin link)
  app/lm-explorer               runs it without installing (app/lm-explorer --help lists the commands)

Disk use
  A model's first load converts it once: smollm2 about 0.5 GB, gemma3 about 1.3 GB, in ~/.cache/lm-explorer
  (XDG_CACHE_HOME or LM_EXPLORER_HOME move it). Models > Storage, or lm-explorer storage, shows and clears it.

Uninstall
  ~/.local/share/lm-explorer/uninstall.sh            (DIR/uninstall.sh after --prefix DIR) removes the app, the
                                                     menu entry, the icon and the ~/.local/bin link
  ~/.local/share/lm-explorer/uninstall.sh --caches   also removes what the app wrote: converted models, caches,
                                                     fine-tunes in its folder, the session

Licences
  LICENSE (Apache-2.0) for LM Explorer; the bundled models keep theirs: minilm and minilm-mlm Apache-2.0,
  smollm2 Apache-2.0, gemma3 the Gemma Terms of Use (https://ai.google.dev/gemma/terms).
TXT
tar -C "$stage" -czf "$out/$name.tar.gz.tmp" "$name"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
