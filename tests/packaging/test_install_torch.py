"""scripts/install-torch.sh: torch alone from PyTorch's CPU wheel index first (that index only: pip's configured
find-links and extra indexes are set aside, with a short timeout and no retries), then, when that fails, as
here where the index is unreachable, the same version from pip's ordinary sources, which here hold the CPU
build. pip runs for real, in --dry-run mode, through a wrapper that records each call. A torch already installed
at the asked version is named with its build, and nothing is installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_falls_back_to_ordinary_sources_when_the_cpu_index_does_not_answer(tmp_path):
    log = tmp_path / "calls.jsonl"
    wrapper = tmp_path / "python"
    # Each call is logged with the pip variables it saw; installs become dry runs (nothing is written).
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        # The script's first look for an installed torch sees none (this venv has one: it is the install's case).
        f"if args[:1] == ['-c'] and 'nvidia-' in args[1] and not os.path.exists({str(tmp_path / 'looked')!r}):\n"
        f"    open({str(tmp_path / 'looked')!r}, 'w').close()\n"
        "    raise SystemExit(0)\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'args': args, 'pip_env': sorted(k for k in os.environ if k.startswith('PIP_'))"
        ", 'config': os.environ.get('PIP_CONFIG_FILE')}) + '\\n')\n"
        "if args[:3] == ['-m', 'pip', 'install']:\n"
        f"    n = len(open({str(log)!r}).read().splitlines())\n"
        f"    report = os.path.join({str(tmp_path)!r}, f'report-{{n}}.json')\n"
        "    args = args[:3] + ['--dry-run', '--ignore-installed', '--report', report] + args[3:]\n"
        f"raise SystemExit(subprocess.call([{sys.executable!r}, *args]))\n"
    )
    wrapper.chmod(0o755)
    env = dict(os.environ)
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install-torch.sh"), str(wrapper), "2.13.0"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    calls = [c for c in calls if c["args"][:3] == ["-m", "pip", "install"]]
    assert len(calls) == 2
    first, second = calls[0], calls[1]
    assert first["args"][:3] == ["-m", "pip", "install"]
    i = first["args"].index("--index-url")
    assert first["args"][i + 1] == CPU_INDEX and "torch==2.13.0" in first["args"]
    assert {"--no-deps", "--timeout", "--retries"} <= set(first["args"])
    assert first["args"][first["args"].index("--timeout") + 1] == "5"
    assert first["args"][first["args"].index("--retries") + 1] == "0"
    # Only the CPU index: no find-links, extra index or config file of pip's.
    assert not {"PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL"} & set(first["pip_env"])
    assert first["config"] == "/dev/null"
    assert f"PyTorch's CPU wheel index ({CPU_INDEX}) did not give torch 2.13.0 (pip: " in proc.stderr
    assert "taking it from pip's ordinary sources" in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]  # pip's own kept back
    assert "--index-url" not in second["args"] and "torch==2.13.0" in second["args"]
    assert "--no-deps" in second["args"]
    assert not (tmp_path / "report-1.json").exists()  # the first try resolved nothing
    report = json.loads((tmp_path / "report-2.json").read_text())
    [torch] = report["install"]
    assert torch["metadata"]["name"] == "torch" and torch["metadata"]["version"].startswith("2.13.0")


def _fake_torch_env(tmp_path: Path, version: str, requires: list[str]) -> Path:
    """A venv whose only torch is an installed distribution's metadata (what the script reads)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    info = Path(purelib) / f"torch-{version}.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: " + version + "\n"
                                         + "".join(f"Requires-Dist: {r}\n" for r in requires))
    return python


def test_torch_already_installed_is_named_with_its_build_and_nothing_is_installed():
    # This venv's own torch: the CPU build at the lock's version. No pip runs (none could answer here anyway).
    version = next(line.split("==")[1] for line in (ROOT / "constraints.txt").read_text().splitlines()
                   if line.startswith("torch=="))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install-torch.sh"), sys.executable, version,
                           "http://127.0.0.1:9/no-index"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"install-torch: torch {version}+cpu (CPU build) is already installed; nothing to do"
    assert "index" not in proc.stdout + proc.stderr


def test_a_cuda_build_already_installed_is_said_to_be_one(tmp_path):
    python = _fake_torch_env(tmp_path, "2.13.0", ["filelock", "nvidia-cublas-cu12==12.8.4.1; platform_system == 'Linux'"])
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install-torch.sh"), str(python), "2.13.0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "torch 2.13.0 is already installed, but its CUDA build" in proc.stderr
    assert f"{python} -m pip uninstall -y torch" in proc.stderr
