#!/usr/bin/env bash
# Install PyTorch's CPU build into a Python environment before anything else asks for torch.
# Plain PyPI serves the CUDA build (a 527 MB wheel plus 16 nvidia packages and triton: several GB); PyTorch's own
# CPU wheel index serves a 192 MB wheel. So: torch alone, without its dependencies, from that index only (a short
# timeout and no retries, so an unreachable index fails in about a second); if that fails, the same version from
# pip's ordinary sources (where a local CPU wheel may lie, as on the project's build machines). Both without
# dependencies: torch's own come with the project's install, at the lock's versions.
# Usage: scripts/install-torch.sh PYTHON VERSION [INDEX_URL]
set -euo pipefail
python="$1"
version="$2"
index="${3:-https://download.pytorch.org/whl/cpu}"
# Already there at this version: say which build it is and install nothing (pip would call the requirement satisfied
# without asking any index, and a message of a download from the CPU index would be false). A CUDA build is left
# alone, with the command that replaces it.
# "VERSION cpu" or "VERSION cuda" (its metadata requires nvidia-* packages), nothing when torch is not installed.
torch_build() {
  "$python" -c '
import importlib.metadata as m, sys
try:
    v = m.version("torch")
except m.PackageNotFoundError:
    sys.exit()
cuda = any(r.lower().startswith("nvidia-") for r in m.requires("torch") or [])
print(v, "cuda" if cuda else "cpu")'
}
installed="$(torch_build)"
have="${installed%% *}"
if [ -n "$installed" ] && [ "${have%%+*}" = "$version" ]; then
  if [ "${installed##* }" = cpu ]; then
    echo "install-torch: torch $have (CPU build) is already installed; nothing to do"
  else
    echo "install-torch: torch $have is already installed, but its CUDA build (several GB); for the CPU build:" \
      "$python -m pip uninstall -y torch, then run this again" >&2
  fi
  exit 0
fi
# Only the CPU index for the first try: pip's configured extra indexes and find-links would otherwise answer it.
# pip's own errors of this try are kept back (an unreachable index is the expected case here, not an error) and
# summed up in one line.
errors="$(mktemp)"
trap 'rm -f "$errors"' EXIT
if env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_NO_INDEX PIP_CONFIG_FILE=/dev/null \
    "$python" -m pip install --quiet --no-deps --timeout 5 --retries 0 --index-url "$index" "torch==$version" \
    2>"$errors"; then
  echo "install-torch: torch $version from PyTorch's CPU wheel index"
else
  why="$(grep -E '^ERROR:' "$errors" | tail -n 1 | sed 's/^ERROR: *//')"
  echo "install-torch: PyTorch's CPU wheel index ($index) did not give torch $version${why:+ (pip: $why)};" \
    "taking it from pip's ordinary sources" >&2
  "$python" -m pip install --quiet --no-deps "torch==$version"
fi
installed="$(torch_build)"
echo "install-torch: installed torch ${installed%% *} ($([ "${installed##* }" = cpu ] && echo "CPU build" \
  || echo "CUDA build: several GB"))"
