#!/usr/bin/env bash
# Turn the built bundle (dist/lm-explorer/, from `make bundle`) into the release tarball
# dist/lm-explorer-VERSION-linux-x86_64.tar.gz: the app folder, install.sh (which writes uninstall.sh), the
# menu entry template, the icon and LICENSE, in one top folder.
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
cat > "$stage/$name/README.txt" <<TXT
LM Explorer $version for Linux $(uname -m) (glibc 2.36 or newer).

  ./install.sh                  installs into ~/.local/share/lm-explorer/app, adds the menu entry and
                                ~/.local/bin/lm-explorer (./install.sh --prefix DIR to choose the folder)
  app/lm-explorer               runs it without installing (app/lm-explorer --help for the commands)

Uninstall: ~/.local/share/lm-explorer/uninstall.sh (--caches also removes converted models and caches).
Licences: LICENSE (Apache-2.0) for LM Explorer; the bundled models keep theirs (gemma3: Gemma Terms of Use).
TXT
tar -C "$stage" -czf "$out/$name.tar.gz.tmp" "$name"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
