"""Keeping API keys out of every message: the keys the app knows (the ones it read, and environment variables named
like keys) are replaced by '***' together with their pieces and transformed forms (a tail, the reversed key),
as are ``Bearer …`` / ``Basic …`` credentials and the user:password part of a URL.

The CLI, the window's error and status messages and the log all pass their text through :func:`redact`, so a
server that echoes the key, or a key typed where a name belongs, never reaches the screen or a file.
"""

from __future__ import annotations

import logging
import os
import re
import threading

MIN_SECRET = 8  # shorter values are not treated as keys (they would redact ordinary words)
PIECE = 6  # a run of this many characters of a key (or of the reversed key) is redacted wherever it appears
TAIL = 4  # '…abcd' / '****abcd': servers show the last characters of a key after a mask
MASK = "***"

# Environment variables whose values are secrets even when the app never sends them.
_SECRET_NAME = re.compile(r"(?i)(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?)$")
# Well-known key shapes: OpenAI/Anthropic (sk-), Hugging Face (hf_), GitHub, GitLab, Slack, AWS, Google.
_KEY_PREFIXES = ("sk-", "sk_", "rk-", "pk-", "hf_", "ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "glpat-",
                 "xoxb-", "xoxp-", "xoxa-", "AKIA", "ASIA", "AIza", "ya29.", "eyJ")
_BEARER = re.compile(r"(?i)\b(bearer\s+|authorization:\s*basic\s+)[^\s\"',;]+")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")

_known: set[str] = set()
_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Treat ``secret`` as a key from now on: every later message is redacted of it."""
    if secret and len(secret.strip()) >= MIN_SECRET:
        with _lock:
            _known.add(secret.strip())


def looks_like_key(text: str) -> bool:
    """True when ``text`` looks like a credential rather than a name: a known key prefix, or a long run of
    letters and digits in mixed case (environment-variable names are words in one case)."""
    t = (text or "").strip()
    if len(t) < 12 or any(c.isspace() for c in t):
        return False
    if t.startswith(_KEY_PREFIXES):
        return True
    has_digit = any(c.isdigit() for c in t)
    mixed_case = any(c.islower() for c in t) and any(c.isupper() for c in t)
    if len(t) >= 20 and has_digit and mixed_case:
        return True
    return len(t) >= 32 and has_digit and "_" not in t


def _environment_secrets() -> list[str]:
    return [v.strip() for k, v in os.environ.items()
            if _SECRET_NAME.search(k) and v and len(v.strip()) >= MIN_SECRET and looks_like_key(v)]


def known_secrets() -> list[str]:
    """Every value redacted: the remembered keys and the key-like values of key-named environment variables."""
    with _lock:
        known = set(_known)
    return sorted(known | set(_environment_secrets()), key=len, reverse=True)


def _covered(text: str, secret: str) -> list[bool]:
    """Which characters of ``text`` belong to a run of PIECE characters of ``secret`` or of its reverse."""
    k = min(PIECE, len(secret))
    grams = {form[i:i + k] for form in (secret, secret[::-1]) for i in range(len(form) - k + 1)}
    mark = [False] * len(text)
    for i in range(len(text) - k + 1):
        if text[i:i + k] in grams:
            for j in range(i, i + k):
                mark[j] = True
    return mark


def _mask_runs(text: str, mark: list[bool]) -> str:
    out, i = [], 0
    while i < len(text):
        if mark[i]:
            while i < len(text) and mark[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def redact(text: str, *secrets: str | None) -> str:
    """``text`` without keys: the known ones and ``secrets`` (whole, in pieces, reversed, or as a masked tail),
    bearer/basic credentials and URL userinfo each become '***'."""
    if not text:
        return text
    text = str(text)
    text = _USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    for extra in secrets:
        if extra and len(extra.strip()) >= MIN_SECRET:
            remember(extra)
    for secret in known_secrets():
        if secret in text or secret[::-1] in text:
            text = text.replace(secret, MASK).replace(secret[::-1], MASK)
        mark = _covered(text, secret)
        if any(mark):
            text = _mask_runs(text, mark)
        tail = re.escape(secret[-TAIL:])
        text = re.sub(r"([*.\u2026\u2022xX]{2,})" + tail, r"\1" + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's final message (installed on the app's log handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
