"""Where prompts are run: a local transformers causal LM, or any OpenAI-compatible HTTP endpoint
(vLLM, TGI, a llama.cpp server, Ollama) for models that do not fit this machine.

Both give the same two operations — ``generate`` (streamed) and ``score`` (log-probability of options) — so the
panel, the CLI and the sweep do not care which one runs. The HTTP API key comes from an environment variable or
the system keyring (when the ``keyring`` package is installed) and is never written to settings. A key is only
sent to the endpoint the user tied it to: the variable named for that endpoint (``--api-key-env``, the panel's
field saved with its URL) or the keyring entry stored under that URL, never to any endpoint by default.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import queue
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.limits import MAX_HTTP_BODY, MAX_HTTP_LINE, MAX_HTTP_STREAM, loads_json, size_text
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.io.redaction import looks_like_key, redact, remember
from explorer.core.prompting.generation import GenerationResult, GenerationSettings, StepInfo
from explorer.core.prompting.scoring import OptionScore, ScoreResult, pick_best

__all__ = ["redact"]  # re-exported: messages about endpoints are redacted with the app-wide rules

KEYRING_SERVICE = "lm-explorer"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


class LocalBackend:
    """A loaded local causal LM (:class:`explorer.core.models.LoadedModel`)."""

    kind = "local"

    def __init__(self, lm: Any) -> None:
        if "causal-lm" not in lm.heads:
            raise ModelError(
                f"{lm.name} has no next-token head (it is a {lm.kind} with heads: {', '.join(lm.heads) or 'none'}). "
                "Prompting needs a causal language model such as smollm2."
            )
        self.lm = lm
        self.name = lm.name

    @property
    def tokenizer(self) -> Any:
        return self.lm.tokenizer

    @property
    def context_length(self) -> int | None:
        return self.lm.max_length

    def count_tokens(self, text: str, add_special_tokens: bool = True) -> int | None:
        from explorer.core.prompting.prompts import count_tokens

        return count_tokens(self.lm.tokenizer, text, add_special_tokens)

    def generate(
        self,
        prompt: str,
        settings: GenerationSettings,
        add_special_tokens: bool = True,
        partial: Callable[[dict], None] | None = None,
        progress: Progress = no_progress,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        from explorer.core.prompting.generation import generate

        return generate(self.lm, prompt, settings, add_special_tokens, partial=partial, progress=progress, cancel=cancel)

    def score(
        self,
        prompt: str,
        options: list[str],
        normalize: str = "mean",
        add_special_tokens: bool = True,
        progress: Progress = no_progress,
        cancel: threading.Event | None = None,
    ) -> ScoreResult:
        from explorer.core.prompting.scoring import score_options

        return score_options(self.lm, prompt, options, normalize, add_special_tokens, progress=progress, cancel=cancel)

    def describe(self) -> dict:
        return {"backend": "local", "model": self.name}


# ---------------------------------------------------------------- HTTP


def is_env_var_name(name: str) -> bool:
    """True for a plausible environment-variable name; a pasted API key (``sk-…``, ``hf_…``) is not one."""
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name or "")) and not looks_like_key(name)


def check_key_env_name(name: str) -> str:
    """``name`` when it is an environment-variable name; otherwise an InputError that never repeats what was given
    (it may be the key itself, pasted where its variable's name belongs)."""
    text = (name or "").strip()
    if is_env_var_name(text):
        return text
    if looks_like_key(text):
        remember(text)
        raise InputError(
            "The API-key setting takes the NAME of an environment variable (such as OPENAI_API_KEY), and what was "
            "given looks like a key itself, so it was not used and is not shown. Put the key in a variable "
            "(export MY_KEY=…) and give that variable's name."
        )
    raise InputError(
        "The API-key setting takes the NAME of an environment variable: letters, digits and '_', not starting with "
        "a digit (such as OPENAI_API_KEY). What was given is not one, so it is not shown."
    )


def resolve_api_key(env_var: str | None, base_url: str) -> str | None:
    """The API key tied to this endpoint: the variable ``env_var`` names (given for this endpoint), else the system
    keyring's entry for this base URL (service 'lm-explorer'). No variable is read unless it was named."""
    if env_var:
        value = os.environ.get(env_var)
        if value:
            remember(value)
            return value
    try:
        import keyring  # optional
    except ImportError:
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, base_url) or None
    except Exception:  # no keyring backend on this system
        return None
    remember(value)
    return value


def normalize_base_url(url: str) -> str:
    """``http://host:port`` → ``http://host:port/v1``; a URL with a path is used as given. A URL with a space or
    control character, a bad host or port, or a user:password part is refused (shown without the password)."""
    url = (url or "").strip().rstrip("/")
    if not url:
        raise InputError("Give the endpoint's base URL, e.g. http://127.0.0.1:8000/v1.")
    shown = redact(url)[:200]
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or len(url) > 2048:
        raise InputError(f"The endpoint URL {shown!r} has a space or control character in it (or is too long); "
                         "give a plain address such as http://127.0.0.1:8000/v1.")
    if "://" not in url:
        url = "http://" + url
    try:
        parsed = urllib.parse.urlparse(url)
        _ = parsed.port  # raises for a port that is not a number in 0-65535
        host = parsed.hostname
    except ValueError:
        raise InputError(f"'{shown}' is not a usable http(s) URL (check the host and port).") from None
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not host:
        raise InputError(f"'{shown}' is not an http(s) URL.")
    if "@" in parsed.netloc:
        raise InputError(
            f"The endpoint URL '{shown}' carries a user name or password. Credentials are not taken from a URL (it "
            "would show them in messages): put the key in an environment variable and name it as the endpoint's key."
        )
    if parsed.path in ("", "/"):
        url += "/v1"
    return url


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urllib.parse.urlsplit(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return (parsed.scheme, (parsed.hostname or "").lower(), port)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only within the endpoint's origin: urllib would otherwise re-send the
    ``Authorization`` header (the API key) to whatever host or port the server names."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201 - urllib's signature
        if _origin(newurl) != _origin(req.full_url):
            raise ModelError(
                f"{_origin_text(req.full_url)} redirected the request to another address "
                f"({_origin_text(newurl)}). It was not followed, so the API key is only ever sent to the endpoint "
                "you gave. Use the final address as the endpoint if you trust it."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _origin_text(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc}"


def endpoint_origin(url: str) -> str:
    """``scheme://host:port`` of an endpoint URL (what a key is tied to), or '' when the URL is not usable."""
    try:
        scheme, host, port = _origin(normalize_base_url(url))
    except InputError:
        return ""
    return f"{scheme}://{host}:{port}"


_SOCKETS: dict[int, socket.socket] = {}  # worker thread -> the socket of its request in flight
_SOCKETS_LOCK = threading.Lock()


def _track(sock: socket.socket | None) -> None:
    if sock is not None:
        with _SOCKETS_LOCK:
            _SOCKETS[threading.get_ident()] = sock


def _abort(thread_id: int | None) -> None:
    """End the request a worker thread is blocked in (connecting, reading headers or a trickled body) at once:
    shutting the socket down wakes its read without waiting for the lock a ``close()`` would need."""
    with _SOCKETS_LOCK:
        sock = _SOCKETS.pop(thread_id, None) if thread_id is not None else None
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _forget() -> None:
    with _SOCKETS_LOCK:
        _SOCKETS.pop(threading.get_ident(), None)


class _TrackedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _track(self.sock)


class _TrackedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _track(self.sock)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):  # noqa: ANN001, ANN201 - urllib's signature
        return self.do_open(_TrackedHTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):  # noqa: ANN001, ANN201 - urllib's signature
        kwargs: dict[str, Any] = {"context": self._context}
        if hasattr(self, "_check_hostname"):  # Python 3.11
            kwargs["check_hostname"] = self._check_hostname
        return self.do_open(_TrackedHTTPSConnection, req, **kwargs)


_OPENER = urllib.request.build_opener(_SameOriginRedirects, _HTTPHandler, _HTTPSHandler)


MAX_TIMEOUT = 86_400.0  # a day; socket timeouts beyond the platform's time_t overflow


def check_timeout(value: Any) -> float:
    """The endpoint timeout in seconds: a finite number above 0 and at most a day."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise InputError(f"The timeout must be a number of seconds, not {value!r}.") from None
    if not (math.isfinite(t) and 0 < t <= MAX_TIMEOUT):
        raise InputError(f"The timeout must be above 0 and at most {MAX_TIMEOUT:g} seconds (got {value!r}).")
    return t


def _http_problem(err: BaseException) -> str:
    text = " ".join(str(err).split())[:120]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _snippet(data: Any) -> str:
    text = json.dumps(data, ensure_ascii=False, default=str) if not isinstance(data, str) else data
    return text[:160] + ("…" if len(text) > 160 else "")


def first_choice(data: Any, where: str) -> dict:
    """``data["choices"][0]`` of an OpenAI completion, or a ModelError saying the server's answer is not one
    (a proxy's error page, ``"choices": null``, a list where an object belongs)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelError(
            f"{where} did not answer with an OpenAI completion (expected a non-empty 'choices' list): {_snippet(data)}"
        )
    return choices[0]


@dataclass
class HttpSettings:
    """Endpoint settings that may be saved: no key, only the name of the variable holding it."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    api_key_env: str = ""  # tied to base_url: no key is sent unless a variable is named for this endpoint
    timeout: float = 30.0


class OpenAIBackend:
    """Any server speaking OpenAI's ``/v1/completions``; uses its logprobs (top alternatives, echo) when returned."""

    kind = "http"
    tokenizer = None

    def __init__(
        self, base_url: str, model: str = "", api_key_env: str | None = None, timeout: float = 30.0,
        api_key: str | None = None, idle_timeout: float | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.model = model.strip()
        self.api_key_env = check_key_env_name(api_key_env) if api_key_env else None
        remember(api_key)
        self._api_key = api_key if api_key is not None else resolve_api_key(self.api_key_env, self.base_url)
        self.timeout = check_timeout(timeout)
        self.idle_timeout = self.timeout if idle_timeout is None else check_timeout(idle_timeout)
        self.name = f"{self.model or 'default'} @ {urllib.parse.urlparse(self.base_url).netloc}"
        self._tokenize_route: str | None = None
        self.context_length: int | None = None

    def describe(self) -> dict:
        return {"backend": "http", "base_url": self.base_url, "model": self.model, "api_key_env": self.api_key_env}

    # ------------------------------------------------------------ transport

    def _request(
        self, path: str, body: dict | None, stream: bool = False, timeout: float | None = None, root: str | None = None
    ) -> Any:
        url = (root or self.base_url) + path
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, headers=headers, method="GET" if body is None else "POST")
        t = self.timeout if timeout is None else timeout
        try:
            return _OPENER.open(req, timeout=t)
        except urllib.error.HTTPError as err:
            detail = ""
            try:
                payload = loads_json(err.read(MAX_HTTP_BODY).decode("utf-8", "replace") or "{}", "the error answer",
                                     ModelError)
                e = payload.get("error", payload.get("detail", payload)) if isinstance(payload, dict) else payload
                detail = e.get("message", str(e)) if isinstance(e, dict) else str(e)
            except (ModelError, OSError, http.client.HTTPException):
                pass
            detail = redact(detail, self._api_key)[:300]
            if err.code in (401, 403):
                if self._api_key:
                    where = f"the environment variable {self.api_key_env}" if self.api_key_env else "the keyring"
                    hint = f"check the API key in {where}."
                else:
                    hint = ("no API key was sent: a key is only sent to the endpoint it is tied to, so name the "
                            "environment variable holding it for this endpoint (--api-key-env VAR, or the panel's "
                            "key field).")
                raise ModelError(f"{url} refused the request ({err.code}): {hint} {detail}".strip()) from err
            raise ModelError(f"{url} answered {err.code} {err.reason}. {detail}".strip()) from err
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, TimeoutError) or "timed out" in str(reason):
                raise ModelError(f"No answer from {url} within {t:g} s. Is the server up and the address right?") from err
            if isinstance(reason, ConnectionRefusedError):
                raise ModelError(f"Could not reach {url}: connection refused. Is the server running on that port?") from err
            raise ModelError(f"Could not reach {url}: {reason}.") from err
        except TimeoutError as err:
            raise ModelError(f"No answer from {url} within {t:g} s. Is the server up and the address right?") from err
        except OSError as err:
            raise ModelError(f"Could not reach {url}: {err}.") from err
        except http.client.HTTPException as err:  # a bad status line, too many or too long headers
            raise ModelError(f"{url} sent a malformed HTTP answer ({_http_problem(err)}).") from err
        except ValueError as err:  # urllib's own checks of the URL (control characters, a bad port)
            raise ModelError(f"{url} cannot be requested: {str(err)[:120]}.") from err

    def _read_json(self, resp: Any, where: str) -> Any:
        """The answer's body as JSON, through the HTTP limits (size, depth, no NaN); any failure one ModelError."""
        try:
            raw = resp.read(MAX_HTTP_BODY + 1)
        except (OSError, ValueError, http.client.HTTPException) as err:  # ValueError: a bad chunk size
            raise ModelError(f"{where} sent a broken answer ({_http_problem(err)}).") from err
        if len(raw) > MAX_HTTP_BODY:
            raise ModelError(f"{where} answered with more than {size_text(MAX_HTTP_BODY)}, the limit for one answer.")
        text = raw.decode("utf-8", "replace")
        try:
            return loads_json(text, f"The answer of {where}", ModelError)
        except ModelError as err:
            raise ModelError(redact(f"{err} It began: {text[:160]!r}", self._api_key)) from None

    def _call(self, fn: Callable[[], Any], cancel: threading.Event | None, what: str) -> Any:
        """Run a blocking HTTP exchange in a helper thread so cancel returns at once and the wait is bounded."""
        box: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                box.put((True, fn()))
            except BaseException as err:  # delivered to the caller below
                box.put((False, err))
            finally:
                _forget()

        worker = threading.Thread(target=work, name=f"http-{what}", daemon=True)
        worker.start()
        try:
            return self._wait(box, cancel, what)
        finally:
            if worker.is_alive():
                _abort(worker.ident)  # timed out or cancelled: the socket is shut, the thread ends

    def _wait(self, box: queue.Queue, cancel: threading.Event | None, what: str) -> Any:
        deadline = time.monotonic() + self.timeout  # the whole exchange: connect, headers and a trickled body
        while True:
            check(cancel)
            try:
                ok, value = box.get(timeout=0.05)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise ModelError(f"No answer from {self.base_url} within {self.timeout:g} s ({what}).") from None
                continue
            if ok:
                return value
            raise self._redacted(value)

    def _redacted(self, err: BaseException) -> BaseException:
        """The same error with the key removed from its message (servers echo headers in error bodies)."""
        if isinstance(err, (ModelError, InputError)):
            clean = redact(str(err), self._api_key)
            if clean != str(err):
                return type(err)(clean)
        return err

    def _post_json(
        self, path: str, body: dict, cancel: threading.Event | None = None, timeout: float | None = None,
        root: str | None = None,
    ) -> dict:
        def run() -> dict:
            with self._request(path, body, timeout=timeout, root=root) as resp:
                return self._read_json(resp, f"{root or self.base_url}{path}")

        return self._call(run, cancel, path)

    def models(self, cancel: threading.Event | None = None) -> list[str]:
        """Model ids the server lists (also a quick reachability check)."""
        def run() -> dict:
            with self._request("/models", None) as resp:
                return self._read_json(resp, f"{self.base_url}/models")

        data = self._call(run, cancel, "models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise ModelError(f"{self.base_url}/models did not answer with a model list: {_snippet(data)}")
        return [str(m.get("id")) for m in items if isinstance(m, dict)]

    def count_tokens(self, text: str, add_special_tokens: bool = True) -> int | None:
        """Token count from the server's tokenize route when it has one (vLLM, llama.cpp); None otherwise."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        routes = [self._tokenize_route] if self._tokenize_route else ["/extras/tokenize", "/tokenize", "/v1/tokenize"]
        for route in routes:
            if route == "":
                return None
            body = {"input": text, "prompt": text, "content": text, "model": self.model, "add_special": add_special_tokens}
            try:
                data = self._post_json(route, body, timeout=min(self.timeout, 5.0), root=root)
            except ModelError:
                continue
            if not isinstance(data, dict):
                continue
            tokens = data.get("tokens")
            count = data.get("count")
            if isinstance(tokens, list) or isinstance(count, int):
                self._tokenize_route = route
                return int(count) if isinstance(count, int) else len(tokens)
        self._tokenize_route = ""
        return None

    # ------------------------------------------------------------ generate

    def _completion_body(self, prompt: str, settings: GenerationSettings, stream: bool) -> dict:
        body: dict[str, Any] = {
            "prompt": prompt,
            "max_tokens": int(settings.max_new_tokens),
            "temperature": float(settings.temperature) if settings.do_sample else 0.0,
            "top_p": float(settings.top_p) if settings.do_sample else 1.0,
            "logprobs": max(1, min(int(settings.top_n), 5)),  # OpenAI's limit is 5
            "stream": stream,
            "seed": int(settings.seed),
        }
        if self.model:
            body["model"] = self.model
        if settings.stop:
            body["stop"] = [s for s in settings.stop if s][:4]
        if settings.do_sample and settings.top_k > 0:
            body["top_k"] = int(settings.top_k)  # vLLM / llama.cpp extension
        return body

    @staticmethod
    def _steps_from_logprobs(lp: dict | None, fallback_text: str) -> list[StepInfo]:
        if not lp or not lp.get("tokens"):
            return [StepInfo(-1, fallback_text, float("nan"), float("nan"), [])] if fallback_text else []
        steps = []
        tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
        for tok_text, tok_lp, top in zip(lp["tokens"], lp.get("token_logprobs") or [None] * len(lp["tokens"]), tops, strict=False):
            value = float(tok_lp) if tok_lp is not None else float("nan")
            alts = sorted(((str(t), math.exp(float(v))) for t, v in (top or {}).items()), key=lambda kv: -kv[1])
            steps.append(StepInfo(-1, str(tok_text), math.exp(value) if tok_lp is not None else float("nan"), value, alts))
        return steps

    def generate(
        self,
        prompt: str,
        settings: GenerationSettings,
        add_special_tokens: bool = True,
        partial: Callable[[dict], None] | None = None,
        progress: Progress = no_progress,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Streamed completion; text pieces go to ``partial`` as they arrive."""
        settings.validate()
        if not prompt:
            raise InputError("The prompt is empty.")
        lines: queue.Queue = queue.Queue()
        holder: dict[str, Any] = {}

        def reader() -> None:
            try:
                holder["thread"] = threading.get_ident()
                resp = self._request("/completions", self._completion_body(prompt, settings, True), stream=True)
                holder["resp"] = resp
                total = 0
                with resp:
                    while True:
                        raw = resp.readline(MAX_HTTP_LINE + 1)
                        if not raw:
                            break
                        total += len(raw)
                        if len(raw) > MAX_HTTP_LINE:
                            raise ModelError(f"{where} sent a stream line longer than {size_text(MAX_HTTP_LINE)}, "
                                             "the limit for one event.")
                        if total > MAX_HTTP_STREAM:
                            raise ModelError(f"{where} streamed more than {size_text(MAX_HTTP_STREAM)}, the limit "
                                             "for one answer.")
                        lines.put(("line", raw.decode("utf-8", "replace")))
                lines.put(("end", None))
            except (OSError, ValueError, http.client.HTTPException) as err:
                if not holder.get("closed"):
                    lines.put(("error", ModelError(f"{where} broke off the stream ({_http_problem(err)}).")))
            except BaseException as err:
                lines.put(("error", err))
            finally:
                _forget()

        start = time.perf_counter()
        where = f"{self.base_url}/completions"
        threading.Thread(target=reader, name="http-stream", daemon=True).start()
        text, steps, finish = "", [], None
        # The timeout bounds the wait for the first completion event: bytes trickled without one, keep-alive
        # comments or a stalled stream never extend it. Each later event must come within the idle timeout, so a
        # healthy stream runs as long as it keeps sending tokens (at most max_new_tokens of them).
        deadline = time.monotonic() + self.timeout
        most_events = 2 * settings.max_new_tokens + 16
        chunks = 0
        try:
            while True:
                check(cancel)
                if time.monotonic() > deadline:
                    if not chunks:
                        raise ModelError(f"No answer from {where} within {self.timeout:g} s (the timeout bounds the "
                                         "whole wait; bytes trickled without a completion event do not extend it).")
                    raise ModelError(f"{where} stopped sending for {self.idle_timeout:g} s (the idle timeout) after "
                                     f"{len(steps)} tokens.")
                try:
                    kind, value = lines.get(timeout=0.05)
                except queue.Empty:
                    continue
                if kind == "error":
                    raise self._redacted(value)
                if kind == "end":
                    break
                line = value.strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = loads_json(payload, f"An event from {where}", ModelError)
                except ModelError as err:
                    raise ModelError(redact(f"{err} It began: {payload[:160]!r}", self._api_key)) from None
                if isinstance(chunk, dict) and "error" in chunk:
                    err = chunk["error"]
                    text = err.get("message", err) if isinstance(err, dict) else err
                    raise ModelError(redact(f"{self.base_url}: {text}", self._api_key))
                choice = first_choice(chunk, where)
                chunks += 1
                if chunks > most_events:
                    raise ModelError(f"{where} sent more than {most_events} events for {settings.max_new_tokens} "
                                     "tokens; the stream was ended.")
                deadline = time.monotonic() + self.idle_timeout
                piece = choice.get("text") or ""
                if not isinstance(piece, str):
                    raise ModelError(f"{where} sent a 'text' that is not a string: {_snippet(piece)}")
                try:
                    new_steps = self._steps_from_logprobs(choice.get("logprobs"), piece)
                except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
                    raise ModelError(f"{where} sent malformed 'logprobs': {_snippet(choice.get('logprobs'))}") from None
                steps.extend(new_steps)
                if piece:
                    text += piece
                    if partial is not None:
                        for j, s in enumerate(new_steps or [None]):
                            partial({"delta": piece if j == 0 else "", "step": s, "index": len(steps) - len(new_steps) + j})
                finish = choice.get("finish_reason") or finish
                progress(min(1.0, len(steps) / settings.max_new_tokens), f"{len(steps)} tokens")
        finally:
            holder["closed"] = True  # done, timed out, cancelled or a bad event: the reader stops reading now
            _abort(holder.get("thread"))
        if not chunks:
            raise ModelError(f"{where} ended the stream without sending any completion event.")
        reason = {"stop": "stop", "length": "max_tokens", "eos": "eos"}.get(str(finish), "stop" if finish else "max_tokens")
        if reason == "stop" and not any(s and s in text for s in settings.stop):
            reason = "eos" if finish == "stop" and len(steps) < settings.max_new_tokens else reason
        return GenerationResult(text, steps, reason, self.count_tokens(prompt) or 0, time.perf_counter() - start,
                                settings.to_dict())

    # ------------------------------------------------------------ score

    def score(
        self,
        prompt: str,
        options: list[str],
        normalize: str = "mean",
        add_special_tokens: bool = True,
        progress: Progress = no_progress,
        cancel: threading.Event | None = None,
    ) -> ScoreResult:
        """Each option's log-probability from the server's echoed prompt logprobs (``echo`` + ``logprobs``)."""
        if not options:
            raise InputError("There are no options to score.")
        scores = []
        for i, option in enumerate(options):
            check(cancel)
            full = prompt + option
            body: dict[str, Any] = {"prompt": full, "max_tokens": 1, "echo": True, "logprobs": 1, "temperature": 0.0}
            if self.model:
                body["model"] = self.model
            data = self._post_json("/completions", body, cancel)
            choice = first_choice(data, f"{self.base_url}/completions")
            lp = choice.get("logprobs") or {}
            if not isinstance(lp, dict):
                raise ModelError(f"{self.base_url}/completions sent 'logprobs' that are not an object: {_snippet(lp)}")
            tokens, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
            offsets = lp.get("text_offset")
            if not isinstance(tokens, list) or not isinstance(values, list) or (
                offsets is not None and not isinstance(offsets, list)
            ):
                raise ModelError(f"{self.base_url}/completions sent malformed 'logprobs': {_snippet(lp)}")
            if not all(isinstance(t, str) for t in tokens) or not all(
                isinstance(o, int) and not isinstance(o, bool) for o in offsets or []
            ):
                raise ModelError(f"{self.base_url}/completions sent malformed 'logprobs': {_snippet(lp)}")
            if not tokens or not values:
                raise ModelError(
                    f"{self.base_url} returned no prompt log-probabilities (it does not support 'echo' with 'logprobs'). "
                    "Use generation (exact match) with this endpoint."
                )
            if not offsets or len(offsets) != len(tokens):
                offsets, pos = [], 0
                for t in tokens:
                    offsets.append(pos)
                    pos += len(t)
            picked_tokens, picked = [], []
            for t, v, off in zip(tokens, values, offsets, strict=False):
                end = off + len(t)
                # Tokens that carry any character of the option; the echoed prompt ends at len(full).
                if end > len(prompt) and off < len(full):
                    if v is None:
                        raise ModelError(f"{self.base_url} gave no log-probability for the token {t!r} of {option!r}.")
                    try:
                        picked.append(float(v))
                    except (TypeError, ValueError):
                        raise ModelError(f"{self.base_url}/completions sent a malformed log-probability "
                                         f"{_snippet(v)} for {_snippet(t)}.") from None
                    picked_tokens.append(str(t))
            if not picked:
                raise ModelError(f"Could not find the tokens of {option!r} in the server's echoed prompt.")
            scores.append(OptionScore(option, float(sum(picked)), picked_tokens, picked))
            progress((i + 1) / len(options), "scoring options")
        return ScoreResult(scores, normalize, pick_best(scores, normalize))


def make_backend(spec: Any) -> LocalBackend | OpenAIBackend:
    """A backend from a loaded local model, or from :class:`HttpSettings`."""
    if isinstance(spec, HttpSettings):
        return OpenAIBackend(spec.base_url, spec.model, spec.api_key_env, spec.timeout)
    if isinstance(spec, (LocalBackend, OpenAIBackend)):
        return spec
    return LocalBackend(spec)
