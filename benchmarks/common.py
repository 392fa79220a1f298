"""Shared pieces of the benchmark harness: the row schema, timing (median of repeats after a warm-up),
resident memory, a description of the machine, and running a measurement in a fresh Python process.

Nothing heavy is imported at module level, so a child process counts its own imports honestly.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROW_KEYS = ("name", "value", "baseline", "ratio", "target", "status", "unit", "note")
STATUSES = ("PASS", "MISS")
NOT_MEASURED = "not measured"
_MARKER = "@@BENCH-RESULT@@"
LAUNCH_ENV = "LMX_BENCH_LAUNCH_TIME"


# ---------------------------------------------------------------- rows


# The text every analysis row repeats to the length it needs.
SENTENCE = "The students read the lecture notes about pre-trained language models and their attention heads. "


def text_of(tokenizer: Any, n_tokens: int) -> str:
    """A text that tokenizes to ``n_tokens`` pieces including the special tokens."""
    n_special = len(tokenizer("a")["input_ids"]) - len(tokenizer("a", add_special_tokens=False)["input_ids"])
    ids = tokenizer(SENTENCE * (n_tokens // 8 + 2), add_special_tokens=False)["input_ids"][: n_tokens - n_special]
    return tokenizer.decode(ids)


def make_row(
    name: str,
    value: float | None,
    *,
    unit: str,
    target: str,
    passed: bool | None,
    baseline: float | None = None,
    ratio: float | None = None,
    note: str = "",
) -> dict:
    """One result row; ``ratio`` defaults to value / baseline. A row that was not measured is a MISS."""
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    status = "PASS" if (passed and value is not None) else "MISS"
    return {
        "name": name,
        "value": _num(value),
        "baseline": _num(baseline),
        "ratio": _num(ratio),
        "target": target,
        "status": status,
        "unit": unit,
        "note": note,
    }


def not_measured(name: str, reason: str, *, unit: str = "", target: str = "") -> dict:
    """A row whose measurement could not run; its note says why."""
    reason = " ".join(str(reason).split())[:300] or "unknown reason"
    return make_row(name, None, unit=unit, target=target, passed=False, note=f"{NOT_MEASURED}: {reason}")


def is_measured(row: dict) -> bool:
    return not str(row.get("note", "")).startswith(NOT_MEASURED)


def row_problems(row: Any) -> list[str]:
    """What is wrong with a row's schema (empty list when it is well formed)."""
    if not isinstance(row, dict):
        return [f"row is a {type(row).__name__}, not a dict"]
    problems = [f"missing key {k!r}" for k in ROW_KEYS if k not in row]
    problems += [f"unexpected key {k!r}" for k in row if k not in ROW_KEYS]
    if row.get("status") not in STATUSES:
        problems.append(f"status {row.get('status')!r} is not PASS or MISS")
    for k in ("value", "baseline", "ratio"):
        v = row.get(k)
        if v is not None and not isinstance(v, (int, float)):
            problems.append(f"{k} {v!r} is not a number or null")
    for k in ("name", "target", "unit", "note"):
        if k in row and not isinstance(row[k], str):
            problems.append(f"{k} is not a string")
    if not row.get("name"):
        problems.append("empty name")
    if row.get("status") == "PASS" and row.get("value") is None:
        problems.append("PASS without a value")
    return problems


def _num(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return float(v)
    return float(v)


# ---------------------------------------------------------------- timing


def repeat_times(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_time(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after a warm-up."""
    return statistics.median(repeat_times(fn, repeats, warmup))


def paired_medians(app: Callable[[], Any], bare: Callable[[], Any], repeats: int = 5,
                   warmup: int = 1, min_seconds: float = 0.0, max_repeats: int = 31) -> tuple[float, float]:
    """Median seconds of ``app`` and of its baseline ``bare``, run alternately so machine noise hits both.

    At least ``repeats`` pairs, and more (up to ``max_repeats``) until the pairs have taken ``min_seconds``: a fast
    call's median of three moves by more than a 10 % target. Each pair swaps which runs first.
    """
    for _ in range(warmup):
        bare()
        app()
    a_times: list[float] = []
    b_times: list[float] = []
    start = time.perf_counter()
    i = 0
    while i < max(1, repeats) or (time.perf_counter() - start < min_seconds and i < max_repeats):
        pair = ((bare, b_times), (app, a_times))
        for fn, store in (pair if i % 2 == 0 else pair[::-1]):
            t0 = time.perf_counter()
            fn()
            store.append(time.perf_counter() - t0)
        i += 1
    return statistics.median(a_times), statistics.median(b_times)


def time_left(wanted: float, deadline: float | None = None) -> float:
    """A child's time limit: ``wanted`` seconds, cut to what is left before ``deadline`` (time.monotonic)."""
    if deadline is None:
        return wanted
    return max(5.0, min(wanted, deadline - time.monotonic()))


def since_launch() -> float | None:
    """Seconds since the parent launched this child process (interpreter start-up included)."""
    launched = os.environ.get(LAUNCH_ENV)
    return time.time() - float(launched) if launched else None


# ---------------------------------------------------------------- memory


def rss_bytes() -> int:
    """Resident memory of this process now."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return _proc_status_kb("VmRSS") * 1024


def peak_rss_bytes() -> int:
    """Highest resident memory this process has had (VmHWM), falling back to getrusage."""
    kb = _proc_status_kb("VmHWM")
    if kb:
        return kb * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _proc_status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- machine


def _version(*dists: str) -> str:
    """Installed version of the first of ``dists`` present (PySide6 may come as PySide6_Essentials)."""
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on (versions read from package metadata, torch is not imported)."""
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "PySide6": _version("PySide6", "PySide6_Essentials"),
        "pyqtgraph": _version("pyqtgraph"),
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (ImportError, OSError):
        pass
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return info


def machine_line(info: dict) -> str:
    """One-line description for the Markdown table."""
    cores = info.get("logical_cores")
    phys = info.get("physical_cores")
    core_text = f"{cores} logical cores" + (f" ({phys} physical)" if phys else "")
    ram = f", {info['ram_gb']} GB RAM" if "ram_gb" in info else ""
    load = f", load average {info['load_average'][0]}" if info.get("load_average") else ""
    return (f"{info.get('cpu', '?')}, {core_text}{ram}; {info.get('os', '')}; Python {info.get('python')}, "
            f"torch {info.get('torch')}, transformers {info.get('transformers')}, PySide6 {info.get('PySide6')}{load}")


# ---------------------------------------------------------------- fresh processes


class ChildError(RuntimeError):
    """A measurement in a child process failed, timed out or printed no result."""


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.update(extra or {})
    return env


def run_child(target: str, kwargs: dict | None = None, *, env: dict[str, str] | None = None,
              timeout: float = 300.0) -> Any:
    """Call ``module:function(**kwargs)`` in a fresh Python process and return its JSON result."""
    cmd = [sys.executable, "-m", "benchmarks.common", target, json.dumps(kwargs or {})]
    full_env = child_env(env)
    full_env[LAUNCH_ENV] = repr(time.time())
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise ChildError(f"{target} took longer than {timeout:.0f} s") from err
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(_MARKER):
            payload = json.loads(line[len(_MARKER):])
            if "error" in payload:
                raise ChildError(payload["error"])
            return payload["result"]
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    raise ChildError(f"{target} exited with code {proc.returncode} without a result: {tail}")


def _child_main(argv: list[str]) -> int:
    target, raw = argv[0], (argv[1] if len(argv) > 1 else "{}")
    module_name, func_name = target.split(":")
    try:
        import importlib

        fn = getattr(importlib.import_module(module_name), func_name)
        payload: dict = {"result": fn(**json.loads(raw))}
    except BaseException as err:  # report every failure to the parent instead of a traceback it must parse
        payload = {"error": f"{type(err).__name__}: {err}"}
    sys.stdout.write("\n" + _MARKER + json.dumps(payload, default=_json_default) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: Qt thread pools or model threads must not hang or crash the exit.
    os._exit(0)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
