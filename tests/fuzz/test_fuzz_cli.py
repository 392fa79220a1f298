"""Issue 25's classes as a fuzz corpus: every case runs ``lm-explorer`` in its own process with a fresh HOME, a
120 s limit and a 4 GB address-space cap (``resource.setrlimit`` in the child), and must end clean: one line on
standard error and exit 2 (or the stated exit code), the user's files unchanged, and no key in any output."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.core.test_hostile_round2 import CASES as SERVERS
from tests.core.test_hostile_round2 import RawServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-fuzz-4f8a2c9e1b7d3a6f5e0c"
MEMORY = 4 * 1024**3
SECONDS = 120


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


@dataclass
class Case:
    argv: list
    stdin: str | None = None  # a path read as standard input
    exit: int = 2  # 0: the right answer, with nothing on standard error
    files: dict = field(default_factory=dict)  # user files made in HOME before the run (name -> bytes)
    server: str | None = None  # a hostile server from tests/core/test_hostile_round2 (its URL replaces {url})
    env: dict = field(default_factory=dict)
    setup: Any = None  # setup(home, tiny_factory): a crafted model folder or data dir made before the run
    says: str = ""  # the one line must say this


DATA = Path(".local/share/lm-explorer")  # the data dir under a fresh HOME (platformdirs)


def _fifo_weights(home: Path, tiny_factory: Any) -> None:
    shutil.copytree(tiny_factory("mlm"), home / "evil")
    (home / "evil" / "model.safetensors").unlink()
    os.mkfifo(home / "evil" / "model.safetensors")


def _fifo_model_list(home: Path, _tiny_factory: Any) -> None:
    (home / DATA).mkdir(parents=True)
    os.mkfifo(home / DATA / "models.json")


def _broken_model_list(home: Path, _tiny_factory: Any) -> None:
    (home / DATA).mkdir(parents=True)
    (home / DATA / "models.json").write_text(json.dumps([{"name": 5, "source": "folder", "location": 7},
                                                          {"name": ["x"], "location": "/tmp"}, "junk", None]))


def _adapter_pickle(home: Path, tiny_factory: Any) -> None:
    """A real adapter fine-tune whose weights are then swapped for a pickle that runs a command when loaded."""
    import contextlib
    import io

    import torch
    from safetensors.torch import load_file

    from explorer.cli import main

    shutil.copytree(tiny_factory("mlm"), home / "base")
    rows = [("good movie", "pos"), ("bad movie", "neg"), ("great film", "pos"), ("awful film", "neg")] * 2
    (home / "d.csv").write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["finetune", "--model", str(home / "base"), "--data", str(home / "d.csv"), "--mode", "adapter",
                     "--epochs", "1", "--out", str(home / "evil-ad")]) == 0
    weights = load_file(home / "evil-ad" / "adapter_model.safetensors")
    weights[next(iter(weights))] = _Pwn(str(home / "pwned"))
    torch.save(weights, home / "evil-ad" / "adapter_model.bin")
    (home / "evil-ad" / "adapter_model.safetensors").unlink()


class _Pwn:
    """Unpickling this runs a shell command (what a hostile weights pickle carries)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle's protocol
        return (os.system, (f"touch {self.marker}",))


def _flipped_gguf(home: Path, _tiny_factory: Any) -> None:
    """SmolLM2's GGUF with one bit of a tensor's shape flipped (576 -> 578)."""
    from gguf import GGUFReader

    from explorer.core.models import catalog

    source = Path(catalog.resolve("smollm2").location) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copyfile(source, home / "flipped.gguf")
    tensor = next(t for t in GGUFReader(source).tensors if len(t.shape) == 1 and t.tensor_type == 0)
    at = tensor.field.offset + 8 + len(tensor.name.encode()) + 4
    with (home / "flipped.gguf").open("r+b") as fh:
        fh.seek(at)
        byte = fh.read(1)[0]
        fh.seek(at)
        fh.write(bytes([byte ^ 2]))


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _evil_config(home: Path, model: Path) -> None:
    import shutil

    shutil.copytree(model, home / "evil")
    config = json.loads((home / "evil" / "config.json").read_text())
    config["num_hidden_layers"] = 10**9
    (home / "evil" / "config.json").write_text(json.dumps(config))
    for f in (home / "evil").glob("*.safetensors"):
        f.unlink()


CASES: dict[str, Case] = {
    # unhandled before: bytes that are not UTF-8, huge CSV fields, deep JSON
    "argv-not-utf8": Case([b"mask", b"caf\xe9 au lait"]),
    "stdin-dev-zero": Case(["mask", "-"], stdin="/dev/zero"),
    "csv-field-2mb": Case(["finetune", "--data", "{home}/big.csv", "--plan"],
                          files={"big.csv": b"text,label\n" + b"x" * 2_000_000 + b",a\nb,c\n"}),
    "jsonl-deep": Case(["finetune", "--data", "{home}/deep.jsonl", "--plan"],
                       files={"deep.jsonl": b'{"text": "a", "label": ' + _deep(100_000) + b"}\n"}),
    "prompt-file-deep": Case(["prompt", "--data", "{home}/deep.json", "--endpoint", "http://127.0.0.1:9/v1",
                              "--query", "hi"], files={"deep.json": _deep(200_000)}),
    "prompt-file-nan": Case(["prompt", "--data", "{home}/nan.jsonl", "--endpoint", "http://127.0.0.1:9/v1",
                             "--query", "hi"], files={"nan.jsonl": b'{"text": "a", "label": NaN}\n'}),
    # memory from a small input
    "config-1e9-layers": Case(["fill", "a [MASK].", "--model", "{home}/evil"]),
    "template-huge-width": Case(["prompt", "--endpoint", "http://127.0.0.1:9/v1", "--query", "hi",
                                 "--template", "{text:>300000000} {output}"]),
    "sse-without-newline": Case(["prompt", "--endpoint", "{url}", "--query", "hi", "--timeout", "5"],
                                server="endless-line"),
    # secrets
    "key-as-api-key-env": Case(["prompt", "--endpoint", "http://127.0.0.1:9/v1", "--api-key-env", KEY,
                                "--query", "hi"]),
    "url-with-password": Case(["prompt", "--endpoint", "http://alice:hunter2pw@127.0.0.1:9/v1", "--query", "hi"]),
    "url-unclosed-bracket": Case(["prompt", "--endpoint", "http://[::1", "--query", "hi"]),
    "url-with-newline": Case(["prompt", "--endpoint", "http://host\n/v1", "--query", "hi"]),
    # hangs
    "drip-fed-stream": Case(["prompt", "--endpoint", "{url}", "--query", "hi", "--timeout", "3"],
                            server="drip-stream"),
    "drip-fed-score": Case(["prompt", "--endpoint", "{url}", "--task", "sentiment", "--score", "--timeout", "3"],
                           server="drip-body"),
    # malformed answers
    "bad-status-line": Case(["prompt", "--endpoint", "{url}", "--query", "hi"], server="bad-status-line"),
    "many-headers": Case(["prompt", "--endpoint", "{url}", "--query", "hi"], server="many-headers"),
    "bad-chunks": Case(["prompt", "--endpoint", "{url}", "--task", "sentiment", "--score"], server="bad-chunks"),
    "deep-json-answer": Case(["prompt", "--endpoint", "{url}", "--task", "sentiment", "--score"],
                             server="deep-json"),
    # wrong results: NaN scores
    "nan-scores": Case(["prompt", "--endpoint", "{url}", "--task", "sentiment", "--score"], server="nan-json"),
    "nan-sweep": Case(["sweep", "--endpoint", "{url}", "--task", "sentiment", "--limit", "2", "--draws", "1",
                       "--shots", "0"], server="nan-json"),
    # data loss: a fine-tune into its own base model's folder
    "finetune-into-its-base": Case(["finetune", "--model", "{home}/evil-base", "--data", "{home}/d.csv",
                                    "--mode", "full", "--out", "{home}/evil-base"],
                                   files={"d.csv": b"text,label\ngood,pos\nbad,neg\nfine,pos\nawful,neg\n"}),
    # round two's last cases: named pipes where a model or the model list is read, a model list of the wrong
    # shape, an export name over the file system's limit, an adapter pickle and a flipped-bit GGUF (noisy before)
    "fifo-as-weights": Case(["fill", "a [MASK].", "--model", "{home}/evil"], setup=_fifo_weights,
                            says="is a named pipe"),
    "fifo-model-list-info": Case(["info", "evil"], setup=_fifo_model_list, says="Unknown model 'evil'"),
    "fifo-model-list-fill": Case(["fill", "a [MASK]."], exit=0, setup=_fifo_model_list),
    "broken-model-list": Case(["models", "--json"], exit=0, setup=_broken_model_list),
    "export-name-300-bytes": Case(["mask", "hello world", "--samples", "2", "--export", "{home}/" + "x" * 300 + ".png"],
                                  says="bytes long"),
    "adapter-pickle": Case(["head", "{home}/evil-ad", "--task", "classify", "good"], setup=_adapter_pickle,
                           says="Refused to load 'evil-ad'"),
    "gguf-flipped-bit": Case(["info", "{home}/flipped.gguf"], setup=_flipped_gguf, says="flipped.gguf is damaged"),
}


def _snapshot(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.rglob("*")) if p.is_file() and ".cache" not in p.parts and ".local" not in p.parts}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuzz_case_ends_clean(name, tmp_path, tiny_factory):
    case = CASES[name]
    home = tmp_path / "home"
    home.mkdir()
    (home / "NOTES.md").write_text("the user's notes")
    for fname, data in case.files.items():
        (home / fname).write_bytes(data)
    if name == "config-1e9-layers":
        _evil_config(home, tiny_factory("mlm"))
    if name == "finetune-into-its-base":
        shutil.copytree(tiny_factory("sequence-classification"), home / "evil-base")
    if case.setup is not None:
        case.setup(home, tiny_factory)
    server = RawServer(SERVERS[case.server]) if case.server else None
    url = server.url if server else ""
    argv = [a.replace("{home}", str(home)).replace("{url}", url) if isinstance(a, str) else a for a in case.argv]
    before = _snapshot(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LM_EXPLORER_", "XDG_"))}
    env.update(HOME=str(home), OPENAI_API_KEY=KEY, LMX_FUZZ_KEY=KEY, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1",
               OMP_NUM_THREADS="1", **case.env)
    stdin = open(case.stdin, "rb") if case.stdin else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        done = subprocess.run([sys.executable, "-m", "explorer", *argv], cwd=home, env=env, stdin=stdin,
                              capture_output=True, timeout=SECONDS, preexec_fn=_cap_memory)
    finally:
        if case.stdin:
            stdin.close()
        if server:
            server.close()
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("\r")]
    assert done.returncode == case.exit, (done.returncode, err[-2000:])
    if case.exit == 0:  # the right answer, and nothing to complain about
        assert not lines, err[-2000:]
        if "--json" in argv:
            json.loads(out)
    else:
        assert len(lines) == 1 and lines[0].startswith("lm-explorer: "), err[-2000:]
        assert case.says in lines[0], lines[0]
    assert "Traceback" not in err and "unexpected error" not in err
    assert not (home / "pwned").exists()  # no pickled command ran
    for form in (KEY, KEY[::-1], KEY[-8:], "hunter2pw"):
        assert form not in out and form not in err, form
    assert _snapshot(home) == before  # the user's files, unchanged
