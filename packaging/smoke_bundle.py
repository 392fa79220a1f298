"""Smoke run of the PyInstaller bundle, headless: `make bundle` fails when any step fails.

Runs the built executable (never this checkout's code) from an empty directory with a fresh cache and data dir,
so a data file the spec forgot shows up here and not on a user's machine:
``--version``, ``info`` on every bundled model, an adapter fine-tune that saves and runs again, an attention
export, spaCy- and jieba-based masking, a built-in prompting task; then checks that no test-only package and
no CUDA library was packed.

Usage: python packaging/smoke_bundle.py [dist/lm-explorer]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST_ONLY = ("hypothesis", "pytest", "_pytest", "pytest_qt", "pytestqt")
CUDA_LIB = re.compile(r"^lib(cuda|cudart|cublas|cufft|curand|cusolver|cusparse|cudnn|nvrtc|nccl)")


class SmokeFailure(Exception):
    pass


def run(exe: Path, args: list[str], cwd: Path, env: dict, timeout: int = 900) -> str:
    """Run the bundle with ``args``; its stdout, or SmokeFailure with its stderr's last lines."""
    start = time.monotonic()
    proc = subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - start
    shown = " ".join(a if len(a) < 40 else a[:37] + "..." for a in args)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        raise SmokeFailure(f"`lm-explorer {shown}` exited with {proc.returncode}:\n{tail}")
    print(f"  ok  lm-explorer {shown}  ({took:.1f} s)", flush=True)
    return proc.stdout


def check_contents(folder: Path) -> None:
    internal = folder / "_internal"
    for rel in ("explorer/resources/tasks/sentiment.jsonl", "explorer/resources/presets/embeddings.json",
                "explorer/resources/samples/chinese-dogs.txt", "explorer/resources/data/sentiment.csv",
                "huggingface_hub/templates/modelcard_template.md", "jieba/dict.txt"):
        if not (internal / rel).is_file():
            raise SmokeFailure(f"the bundle lacks {rel}")
    packed = [p for p in internal.iterdir() if p.name.lower().startswith(TEST_ONLY)]
    if packed:
        raise SmokeFailure(f"test-only packages were packed: {', '.join(p.name for p in packed)}")
    cuda = sorted({p.name for p in internal.rglob("*.so*") if CUDA_LIB.match(p.name)})
    if cuda:
        raise SmokeFailure(f"CUDA libraries were packed: {', '.join(cuda)}")
    print("  ok  contents: resources, model-card template, jieba dictionary; no test packages, no CUDA libraries")


def smoke(folder: Path) -> None:
    exe = folder / "lm-explorer"
    if not exe.is_file():
        raise SmokeFailure(f"{exe} does not exist; build it with `make bundle`")
    check_contents(folder)
    with tempfile.TemporaryDirectory(prefix="lmx-smoke-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(LM_EXPLORER_HOME=str(work / "home"), HF_HUB_OFFLINE="1", QT_QPA_PLATFORM="offscreen",
                   TOKENIZERS_PARALLELISM="false")
        version = run(exe, ["--version"], work, env).strip()
        if not version.startswith("lm-explorer "):
            raise SmokeFailure(f"--version printed {version!r}")
        models = json.loads(run(exe, ["models", "--json"], work, env))
        bundled = [m["name"] for m in models if m["source"] == "bundled"]
        for name in ("minilm", "smollm2"):
            if name not in bundled:
                raise SmokeFailure(f"the bundled model {name} is not listed (bundled: {bundled})")
        for name in bundled:
            card = json.loads(run(exe, ["info", name, "--json"], work, env))
            if not card.get("num_layers"):
                raise SmokeFailure(f"info {name} gave no layer count: {card}")
        data = folder / "_internal" / "explorer" / "resources" / "data" / "sentiment.csv"
        out = work / "adapter"
        result = json.loads(run(exe, ["finetune", "--model", "minilm", "--data", str(data), "--mode", "adapter",
                                      "--epochs", "1", "--out", str(out), "--json"], work, env))
        if not (out / "adapter_model.safetensors").is_file() or "adapter_model.safetensors" not in result["files"]:
            raise SmokeFailure(f"the adapter fine-tune saved no weights (it reports: {result['files']})")
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not (out / name).is_file():
                raise SmokeFailure(f"the adapter fine-tune did not save {name} (saved: {sorted(os.listdir(out))})")
        head = json.loads(run(exe, ["head", str(out), "--task", "classify", "What a wonderful film", "--json"],
                              work, env))
        if not head:
            raise SmokeFailure("the saved adapter gave no prediction")
        png = work / "attention.png"
        run(exe, ["attention", "The dog chased the cat.", "--model", "minilm", "--layer", "2", "--head", "3",
                  "--export", str(png)], work, env)
        if not png.is_file() or png.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise SmokeFailure("the attention export wrote no PNG")
        run(exe, ["mask", "Barack Obama visited New York City last week.", "--strategy", "entity", "--json"],
            work, env)
        run(exe, ["mask", "一只哈巴狗和一只单身狗在公园里散步。", "--strategy", "wwm", "--json"], work, env)
        run(exe, ["prompt", "--task", "sentiment", "--model", "smollm2", "--score", "--json"], work, env)


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/lm-explorer").resolve()
    print(f"Smoke run of {folder}", flush=True)
    try:
        smoke(folder)
    except (SmokeFailure, subprocess.TimeoutExpired, ValueError) as err:
        print(f"SMOKE RUN FAILED: {err}", file=sys.stderr)
        return 1
    print("Smoke run passed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
