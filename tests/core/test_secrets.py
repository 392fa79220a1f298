"""API keys are used for requests but never written to the session, settings, error messages or logs."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from explorer.core.prompting import backends

SECRET = "sk-test-7f3a9c1e-DO-NOT-STORE"
ENV = "LMX_TEST_SECRET_KEY"


class _Refuse(BaseHTTPRequestHandler):
    """Answers every request 401, as a server does for a wrong key, and records the Authorization header."""

    seen: list[str] = []

    def _refuse(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"error": {"message": "Incorrect API key provided."}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def refusing_server():
    server = HTTPServer(("127.0.0.1", 0), _Refuse)
    _Refuse.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_key_is_sent_but_not_in_messages_logs_or_settings(refusing_server, monkeypatch, caplog):
    from explorer.core.prompting.generation import GenerationSettings

    monkeypatch.setenv(ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    backend = backends.OpenAIBackend(refusing_server, model="m", api_key_env=ENV, timeout=5)
    with pytest.raises(Exception) as info:
        backend.generate("Hello", GenerationSettings(max_new_tokens=2))
    assert f"Bearer {SECRET}" in _Refuse.seen  # the key was really used
    assert "401" in str(info.value) and ENV in str(info.value)  # says where the key comes from...
    assert SECRET not in str(info.value)  # ...but not what it is
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(backend.describe())
    assert SECRET not in repr(backend)
    settings = backends.HttpSettings(base_url=refusing_server, api_key_env=ENV)
    assert SECRET not in json.dumps(asdict(settings))


def _key_fields(panel) -> list:
    from PySide6.QtWidgets import QLineEdit

    out = []
    for edit in panel.findChildren(QLineEdit):
        hint = " ".join([edit.placeholderText(), edit.toolTip(), edit.objectName(), edit.accessibleName()]).lower()
        if "key" in hint or "url" in hint or "endpoint" in hint or "http" in hint:
            out.append(edit)
    return out


def test_window_session_never_holds_the_key(qtbot, data_dir, monkeypatch):
    """With the key in the environment (and typed into any key/endpoint field), nothing saved contains it."""
    from explorer.gui.main_window import PANELS, MainWindow

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv(ENV, SECRET)
    w = MainWindow(restore=False)
    qtbot.addWidget(w)
    for key, _cls, _label in PANELS:
        w.show_panel(key)
    fields = _key_fields(w.panels["prompting"])
    assert fields, "the Prompting panel should have its HTTP endpoint and API-key fields"
    for edit in fields:
        if "key" in " ".join([edit.placeholderText(), edit.toolTip(), edit.objectName()]).lower():
            edit.setText(SECRET)  # a user pasting the key where they should type the variable's name
            edit.editingFinished.emit()
    w.save_session()
    saved = [p for p in Path(data_dir).rglob("*") if p.is_file()]
    assert any(p.name == "session.json" for p in saved)
    for p in saved:
        assert SECRET not in p.read_text(encoding="utf-8", errors="replace"), p


class _Redirect(BaseHTTPRequestHandler):
    """Answers 302 to another port (``target``); the other server records what it receives."""

    target = ""

    def _go(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _go

    def log_message(self, *args) -> None:
        pass


class _Echo(BaseHTTPRequestHandler):
    """A 401 whose body echoes the Authorization header back, as some proxies do."""

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"error": {"message": f"bad key: {self.headers.get('Authorization', '')}"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo

    def log_message(self, *args) -> None:
        pass


def _serve(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_cross_origin_redirect_never_carries_the_key(monkeypatch):
    from explorer.core.prompting.generation import GenerationSettings

    other = _serve(_Refuse)
    _Refuse.seen = []
    _Redirect.target = f"http://127.0.0.1:{other.server_address[1]}"
    first = _serve(_Redirect)
    try:
        monkeypatch.setenv(ENV, SECRET)
        backend = backends.OpenAIBackend(f"http://127.0.0.1:{first.server_address[1]}", "m", ENV, timeout=5)
        for call in (lambda: backend.models(),
                     lambda: backend.generate("Hi", GenerationSettings(max_new_tokens=2)),
                     lambda: backend.score("Q: ", ["a", "b"])):
            with pytest.raises(backends.ModelError) as info:
                call()
            assert "redirected" in str(info.value) and SECRET not in str(info.value)
        assert _Refuse.seen == []  # the other origin never heard from us, key or not
    finally:
        for s in (first, other):
            s.shutdown()
            s.server_close()


def test_echoed_key_is_redacted_from_every_message(monkeypatch):
    from explorer.core.prompting.generation import GenerationSettings

    server = _serve(_Echo)
    try:
        monkeypatch.setenv(ENV, SECRET)
        backend = backends.OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}", "m", ENV, timeout=5)
        for call in (lambda: backend.models(),
                     lambda: backend.generate("Hi", GenerationSettings(max_new_tokens=2)),
                     lambda: backend.score("Q: ", ["a", "b"])):
            with pytest.raises(backends.ModelError) as info:
                call()
            message = str(info.value)
            assert "401" in message and SECRET not in message and SECRET[:12] not in message
            assert "Bearer ***" in message
    finally:
        server.shutdown()
        server.server_close()


def test_redact_hides_key_and_bearer_tokens():
    assert backends.redact(f"x {SECRET} y", SECRET) == "x *** y"
    assert backends.redact("Authorization: Bearer abc.def-123", None) == "Authorization: Bearer ***"


# ---------------------------------------------------------------- issue 25: the key policy


class _Record(BaseHTTPRequestHandler):
    """Records each request's Authorization header and answers a 401 whose body shows the key as OpenAI does
    (its start and a masked tail), reversed, and as a bearer token."""

    seen: list[str] = []

    def _answer(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append(auth)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        key = auth.removeprefix("Bearer ")
        text = (f"Incorrect API key provided: {key[:7]}********{key[-4:]}. reversed: {key[::-1]}. "
                f"middle: {key[5:15]}. sent as {auth}") if key else "no key"
        body = json.dumps({"error": {"message": text}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    _Record.seen = []
    server = _serve(_Record)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _forms(secret: str) -> list[str]:
    return [secret, secret[::-1], secret[-6:], secret[-6:][::-1], secret[5:15], secret[:12]]


def test_environment_key_is_not_sent_to_an_endpoint_by_default(recorder, monkeypatch, capsys):
    """OPENAI_API_KEY in the environment goes nowhere unless the user names it for this endpoint."""
    from explorer.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    code = main(["prompt", "--endpoint", recorder, "--task", "sentiment", "--score", "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2 and _Record.seen and set(_Record.seen) == {""}, _Record.seen
    assert "no API key was sent" in err and len(err.strip().splitlines()) == 1
    backend = backends.OpenAIBackend(recorder, "m", timeout=5)
    with pytest.raises(backends.ModelError):
        backend.models()
    assert set(_Record.seen) == {""}


def test_named_key_is_sent_and_every_echoed_form_is_redacted(recorder, monkeypatch, capsys):
    from explorer.cli import main

    monkeypatch.setenv(ENV, SECRET)
    code = main(["prompt", "--endpoint", recorder, "--api-key-env", ENV, "--task", "sentiment", "--score",
                 "--timeout", "5"])
    err = capsys.readouterr().err
    assert code == 2 and _Record.seen == [f"Bearer {SECRET}"]  # really sent, once, to the endpoint it was named for
    assert "401" in err and len(err.strip().splitlines()) == 1
    for form in _forms(SECRET):
        assert form not in err, (form, err)


def test_redact_covers_pieces_reversed_tail_bearer_and_userinfo():
    from explorer.core.io.redaction import redact

    key = "sk-proj-Ab3dEf7hIj0kLmN4pQ"
    text = (f"a {key} b {key[::-1]} c {key[4:14]} d sk-p****{key[-4:]} e Bearer xyz.123 "
            "f http://alice:hunter2pw@example.org/v1 g Authorization: Basic YWxpY2U6aHVudGVy")
    out = redact(text, key)
    for form in [*_forms(key), "hunter2pw", "alice", "xyz.123", "YWxpY2U6aHVudGVy"]:
        assert form not in out, (form, out)
    assert out.startswith("a *** b *** c *** d") and "http://***@example.org/v1" in out
    assert redact("the token count is 12; basic usage; sk-", None) == "the token count is 12; basic usage; sk-"


def test_key_named_environment_variables_are_redacted_even_unused(monkeypatch):
    from explorer.core.io.redaction import redact

    monkeypatch.setenv("SOME_SERVICE_API_KEY", "ghp_9XyZ8wVu7tSr6qPo5nMl")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.1234")  # not a key: paths stay readable
    assert "9XyZ8w" not in redact("echo: ghp_9XyZ8wVu7tSr6qPo5nMl / lMn5oPq6rSt7uVw8ZyX9_phg")
    assert redact("/tmp/ssh-agent.1234 is here") == "/tmp/ssh-agent.1234 is here"


@pytest.mark.parametrize("value", [SECRET, "hf_AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEf0123456789GhIjKlMn",
                                   "sk live with spaces"])
def test_key_given_as_api_key_env_is_refused_unechoed(value, capsys):
    from explorer.cli import main

    code = main(["prompt", "--endpoint", "http://127.0.0.1:9/v1", "--api-key-env", value, "--query", "hi"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "NAME of an environment variable" in err
    for form in _forms(value):
        assert form not in err, (form, err)


@pytest.mark.parametrize("url", ["http://alice:hunter2pw@127.0.0.1:9/v1", "http://[::1", "http://a b/v1",
                                 "http://host\n/v1", "http://127.0.0.1:99999/v1", "ftp://x/v1", "http://:80/v1"])
def test_bad_endpoint_urls_are_one_line(url, capsys):
    from explorer.cli import main

    code = main(["prompt", "--endpoint", url, "--query", "hi", "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "hunter2pw" not in err and "unexpected" not in err


def test_logged_messages_are_redacted(caplog):
    from explorer.core.io.redaction import RedactingFilter, remember

    remember(SECRET)
    logger = logging.getLogger("lmx-test-redaction")
    handler = logging.Handler()
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.error("server said %s", SECRET[::-1])
    finally:
        logger.removeHandler(handler)
    assert seen and SECRET[::-1] not in seen[0] and "***" in seen[0]

