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
