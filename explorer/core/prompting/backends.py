"""Where prompts are run: a local transformers causal LM, or any OpenAI-compatible HTTP endpoint
(vLLM, TGI, a llama.cpp server, Ollama) for models that do not fit this machine.

Both give the same two operations — ``generate`` (streamed) and ``score`` (log-probability of options) — so the
panel, the CLI and the sweep do not care which one runs. The HTTP API key comes from an environment variable or
the system keyring (when the ``keyring`` package is installed) and is never written to settings.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.prompting.generation import GenerationResult, GenerationSettings, StepInfo
from explorer.core.prompting.scoring import OptionScore, ScoreResult, pick_best

KEYRING_SERVICE = "lm-explorer"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"


class LocalBackend:
    """A loaded local causal LM (:class:`explorer.core.models.loading.LoadedModel`)."""

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
    """True for a plausible environment-variable name; a pasted API key (``sk-…``) is not one."""
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name or ""))


def resolve_api_key(env_var: str | None, base_url: str) -> str | None:
    """The API key from ``env_var``, else from the system keyring (service 'lm-explorer', user = base URL)."""
    if env_var:
        value = os.environ.get(env_var)
        if value:
            return value
    try:
        import keyring  # optional
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, base_url) or None
    except Exception:  # no keyring backend on this system
        return None


def normalize_base_url(url: str) -> str:
    """``http://host:port`` → ``http://host:port/v1``; a URL with a path is used as given."""
    url = url.strip().rstrip("/")
    if not url:
        raise InputError("Give the endpoint's base URL, e.g. http://127.0.0.1:8000/v1.")
    if "://" not in url:
        url = "http://" + url
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"'{url}' is not an http(s) URL.")
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


_OPENER = urllib.request.build_opener(_SameOriginRedirects)
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s\"',;]+")


def redact(text: str, secret: str | None) -> str:
    """``text`` with the API key (and anything sent as a bearer token) replaced by '***'."""
    if secret:
        text = text.replace(secret, "***")
        if len(secret) > 12:  # a server may echo part of it
            text = text.replace(secret[:12], "***")
    return _BEARER.sub(r"\1***", text)


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
    api_key_env: str = DEFAULT_KEY_ENV
    timeout: float = 30.0


class OpenAIBackend:
    """Any server speaking OpenAI's ``/v1/completions``; uses its logprobs (top alternatives, echo) when returned."""

    kind = "http"
    tokenizer = None

    def __init__(
        self, base_url: str, model: str = "", api_key_env: str | None = DEFAULT_KEY_ENV, timeout: float = 30.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.model = model.strip()
        self.api_key_env = api_key_env
        self._api_key = api_key if api_key is not None else resolve_api_key(api_key_env, self.base_url)
        self.timeout = check_timeout(timeout)
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
                payload = json.loads(err.read().decode("utf-8", "replace") or "{}")
                e = payload.get("error", payload.get("detail", payload))
                detail = e.get("message", str(e)) if isinstance(e, dict) else str(e)
            except (ValueError, OSError):
                pass
            detail = redact(detail, self._api_key)[:300]
            if err.code in (401, 403):
                where = f"the environment variable {self.api_key_env}" if self.api_key_env else "the keyring"
                raise ModelError(
                    f"{url} refused the request ({err.code}): check the API key in {where}. {detail}".strip()
                ) from err
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

    def _call(self, fn: Callable[[], Any], cancel: threading.Event | None, what: str) -> Any:
        """Run a blocking HTTP exchange in a helper thread so cancel returns at once and the wait is bounded."""
        box: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                box.put((True, fn()))
            except BaseException as err:  # delivered to the caller below
                box.put((False, err))

        threading.Thread(target=work, name=f"http-{what}", daemon=True).start()
        deadline = time.monotonic() + self.timeout + 5
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
                raw = resp.read().decode("utf-8", "replace")
            try:
                return json.loads(raw)
            except ValueError as err:
                raise ModelError(
                    redact(f"{self.base_url}{path} did not answer with JSON: {raw[:200]!r}", self._api_key)
                ) from err

        return self._call(run, cancel, path)

    def models(self, cancel: threading.Event | None = None) -> list[str]:
        """Model ids the server lists (also a quick reachability check)."""
        def run() -> dict:
            with self._request("/models", None) as resp:
                return json.loads(resp.read().decode("utf-8", "replace"))

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
                resp = self._request("/completions", self._completion_body(prompt, settings, True), stream=True)
                holder["resp"] = resp
                with resp:
                    for raw in resp:
                        lines.put(("line", raw.decode("utf-8", "replace")))
                lines.put(("end", None))
            except BaseException as err:
                lines.put(("error", err))

        start = time.perf_counter()
        threading.Thread(target=reader, name="http-stream", daemon=True).start()
        text, steps, finish = "", [], None
        # The timeout bounds the whole request: a server that only sends keep-alives (or trickles) is cut off too.
        deadline = time.monotonic() + self.timeout
        where = f"{self.base_url}/completions"
        chunks = 0
        timed_out = False
        try:
            while True:
                check(cancel)
                if time.monotonic() > deadline:
                    timed_out = True
                    raise ModelError(
                        f"No answer from {where} within {self.timeout:g} s: the timeout bounds the whole answer, "
                        f"and {len(steps)} tokens had arrived."
                    )
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
                    chunk = json.loads(payload)
                except ValueError:
                    raise ModelError(redact(f"{where} sent an event that is not JSON: {payload[:160]!r}",
                                            self._api_key)) from None
                if isinstance(chunk, dict) and "error" in chunk:
                    err = chunk["error"]
                    text = err.get("message", err) if isinstance(err, dict) else err
                    raise ModelError(redact(f"{self.base_url}: {text}", self._api_key))
                choice = first_choice(chunk, where)
                chunks += 1
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
            resp = holder.get("resp")
            if resp is not None and (timed_out or (cancel is not None and cancel.is_set())):
                try:
                    resp.close()
                except OSError:
                    pass
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
