"""Hostile OpenAI-compatible endpoints (issue 15): malformed answers are clear errors, never a traceback or a
silent empty result, and keep-alives cannot hold a request past its timeout."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from explorer.cli import main
from explorer.core.io.errors import InputError, ModelError
from explorer.core.prompting.backends import OpenAIBackend
from explorer.core.prompting.generation import GenerationSettings


class _Handler(BaseHTTPRequestHandler):
    mode = "choices-null"
    stop = threading.Event()

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(json.dumps({"object": "list", "data": None}).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = type(self).mode
        if self.path.endswith("tokenize"):
            self.send_response(404)
            self.end_headers()
            return
        if mode == "choices-null":
            self._send(b'{"choices": null}')
        elif mode == "choices-dict":
            self._send(b'{"choices": {"0": {"text": "x"}}}')
        elif mode == "choices-string":
            self._send(b'{"choices": "oops"}')
        elif mode == "list":
            self._send(b"[1, 2, 3]")
        elif mode == "not-json":
            self._send(b"<html>502 Bad Gateway</html>", "text/html")
        elif mode == "bad-logprobs":
            self._send(json.dumps({"choices": [{"text": "", "logprobs": {"tokens": [1, 2], "token_logprobs": ["a", None]}}]}).encode())
        elif mode.startswith("sse"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                if mode == "sse-malformed":
                    self.wfile.write(b"data: {not json\n\n")
                    self.wfile.flush()
                    return
                if mode == "sse-empty":
                    self.wfile.write(b"data: [DONE]\n\n")
                    return
                while not type(self).stop.is_set():  # sse-keepalive: comments forever, never an event
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return


@pytest.fixture
def server():
    _Handler.stop.clear()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()

    def set_mode(mode: str) -> str:
        _Handler.mode = mode
        return f"http://127.0.0.1:{srv.server_address[1]}/v1"

    yield set_mode
    _Handler.stop.set()
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("mode", ["choices-null", "choices-dict", "choices-string", "list", "not-json", "bad-logprobs"])
def test_malformed_score_answers_are_clear_errors(server, mode):
    backend = OpenAIBackend(server(mode), "m", api_key_env=None, timeout=5)
    with pytest.raises(ModelError) as info:
        backend.score("Review: great. Sentiment:", [" positive", " negative"])
    assert "/completions" in str(info.value) or "JSON" in str(info.value)


@pytest.mark.parametrize("mode", ["choices-null", "list", "sse-malformed", "sse-empty"])
def test_malformed_streams_are_errors_not_empty_output(server, mode):
    backend = OpenAIBackend(server(mode), "m", api_key_env=None, timeout=5)
    with pytest.raises(ModelError):
        backend.generate("Hello", GenerationSettings(max_new_tokens=3))


def test_keepalives_forever_are_cut_at_the_timeout(server):
    backend = OpenAIBackend(server("sse-keepalive"), "m", api_key_env=None, timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ModelError, match="within 1.5 s"):
        backend.generate("Hello", GenerationSettings(max_new_tokens=3))
    assert time.monotonic() - started < 10  # bounded: before the fix this never returned


def test_model_list_that_is_not_a_list(server):
    backend = OpenAIBackend(server("choices-null"), "m", api_key_env=None, timeout=5)
    with pytest.raises(ModelError, match="model list"):
        backend.models()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 1e300])
def test_bad_timeouts_are_refused(timeout):
    with pytest.raises(InputError, match="timeout"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", timeout=timeout)


@pytest.mark.parametrize("mode", ["choices-null", "choices-dict", "not-json"])
def test_cli_score_with_malformed_answer_is_one_line(server, mode, capsys):
    url = server(mode)
    code = main(["prompt", "--endpoint", url, "--api-key-env", "NO_SUCH_VAR_15", "--task", "sentiment", "--score",
                 "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
