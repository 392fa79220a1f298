"""Issue 25's classes as a fuzz corpus: every case runs ``lm-explorer`` in its own process with a fresh HOME, a
120 s limit and a 4 GB address-space cap (``resource.setrlimit`` in the child), and must end clean: one line on
standard error and exit 2 (or the stated exit code), the user's files unchanged, and no key in any output."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

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
    exit: int = 2
    files: dict = field(default_factory=dict)  # user files made in HOME before the run (name -> bytes)
    server: str | None = None  # a hostile server from tests/core/test_hostile_round2 (its URL replaces {url})
    env: dict = field(default_factory=dict)


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
        import shutil

        shutil.copytree(tiny_factory("sequence-classification"), home / "evil-base")
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
    assert len(lines) == 1 and lines[0].startswith("lm-explorer: "), err[-2000:]
    assert "Traceback" not in err and "unexpected error" not in err
    for form in (KEY, KEY[::-1], KEY[-8:], "hunter2pw"):
        assert form not in out and form not in err, form
    assert _snapshot(home) == before  # the user's files, unchanged
