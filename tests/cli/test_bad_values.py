"""The hostile-values campaign (issue 15): every numeric option of every subcommand, given a bad value, ends in
exit 2 with one line on stderr and no traceback, before any model loads. Run in-process through ``main``."""

from __future__ import annotations

import argparse
import math
import os
import stat

import pytest

import explorer.core.models.loading as models
from explorer.cli import build_parser, main

# A model load anywhere in these tests is a failure: every value must be refused before it.
BASE = {
    "mask": ["mask", "hello world"],
    "fill": ["fill", "hello [MASK] world"],
    "objective": ["objective", "hello world"],
    "attention": ["attention", "hello world"],
    "similarity": ["similarity", "--a", "the bank", "--word-a", "bank", "--b", "a bank"],
    "embed": ["embed", "__FILE__", "--word", "bank"],
    "prompt": ["prompt", "--query", "hi"],
    "sweep": ["sweep", "--task", "addition"],
    "head": ["head", "minilm", "hello"],
    "finetune": ["finetune", "--data", "__FILE__", "--plan"],
    "evaluate": ["evaluate", "minilm", "--data", "__FILE__"],
}
SKIP_COMMANDS: set[str] = set()


@pytest.fixture(autouse=True)
def no_model_loads(monkeypatch):
    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded before the bad value was refused")

    monkeypatch.setattr(models, "load_model", refuse)
    monkeypatch.setattr(models, "describe", refuse)


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _numeric_options() -> list[tuple[str, str, tuple]]:
    """(command, option, bounds) of every option with a numeric value, found from the parsers themselves."""
    out = []
    for command, sub in _subparsers().items():
        if command in SKIP_COMMANDS:
            continue
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0:
                continue
            option = action.option_strings[-1]
            bounds = getattr(action.type, "bounds", None)
            if bounds is not None:
                out.append((command, option, bounds))
            elif option == "--head":
                out.append((command, option, ("int", 0, 9999, False, False)))
    return out


def _bad_values(bounds: tuple) -> list[str]:
    kind, lo, hi, lo_open, hi_open = bounds
    values = ["nan", "inf", "-inf", "1e300", "-1e300", "abc", ""]
    if kind == "int":
        values += ["1.5", "1" + "0" * 30, "-" + "1" + "0" * 30]
    if lo is not None:
        values.append(repr(lo - 1) if kind == "int" else repr(lo - abs(lo) - 1.0))
        if lo_open:
            values.append(repr(lo))
    if hi is not None:
        values.append(repr(hi + 1) if kind == "int" else repr(hi * 10 + 1.0))
        if hi_open:
            values.append(repr(hi))
    return values


CASES = [(c, o, v) for c, o, b in _numeric_options() for v in _bad_values(b)]


def test_every_numeric_option_is_validated():
    """No subcommand takes a raw int/float: each numeric option has a range-checking type."""
    raw = []
    for command, sub in _subparsers().items():
        if command in SKIP_COMMANDS:
            continue
        for action in sub._actions:
            if action.type in (int, float) or isinstance(action.default, float) and action.type is None:
                raw.append(f"{command} {action.option_strings}")
    assert raw == []
    commands = {c for c, _o, _b in _numeric_options()}
    assert commands == set(BASE)
    assert len(CASES) > 300


def run(argv, capsys, tmp_path):
    argv = [str(tmp_path / "t.txt") if a == "__FILE__" else a for a in argv]
    (tmp_path / "t.txt").write_text("The bank of the river.")
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code, err):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lm-explorer: ")
    assert "Traceback" not in err


@pytest.mark.parametrize(("command", "option", "value"), CASES, ids=[f"{c}{o}={v}" for c, o, v in CASES])
def test_bad_value_is_one_line_exit_2(command, option, value, capsys, tmp_path):
    code, out, err = run(BASE[command] + [option, value], capsys, tmp_path)
    assert_one_line_error(code, err)
    assert option in err and f"lm-explorer {command} --help" in err and "[-h]" not in err
    assert out == ""


# The exact cases the issue lists, so each is pinned by name.
ISSUE_CASES = [
    ["mask", "--seed", "-1", "hello"],
    ["objective", "--seed", "-1", "hello"],
    ["similarity", "--seed", "-1", "--a", "x bank", "--word-a", "bank", "--b", "y bank"],
    ["objective", "--kind", "text-infill", "--lambda", "-3", "hello"],
    ["objective", "--kind", "text-infill", "--lambda", "nan", "hello"],
    ["objective", "--kind", "text-infill", "--lambda", "1e300", "hello"],
    ["prompt", "--query", "hi", "--temperature", "nan", "--sample"],
    ["prompt", "--query", "hi", "--top-n", "1000000"],
    ["prompt", "--query", "hi", "--top-n", "-1"],
    ["prompt", "--query", "hi", "--max-new-tokens", "0"],
    ["prompt", "--query", "hi", "--endpoint", "http://127.0.0.1:9", "--timeout", "-1"],
    ["prompt", "--query", "hi", "--endpoint", "http://127.0.0.1:9", "--timeout", "nan"],
    ["prompt", "--query", "hi", "--endpoint", "http://127.0.0.1:9", "--timeout", "inf"],
    ["prompt", "--query", "hi", "--endpoint", "http://127.0.0.1:9", "--timeout", "1e300"],
    ["mask", "--p-mask", "nan", "hello"],
    ["attention", "--threshold", "0", "hello"],
    ["attention", "--threshold", "2", "hello"],
    ["attention", "--threshold", "nan", "hello"],
    ["attention", "--threshold", "-1", "hello"],
    ["attention", "--head", "-1", "hello"],
    ["sweep", "--task", "sentiment", "--draws", "0"],
]


@pytest.mark.parametrize("argv", ISSUE_CASES, ids=[" ".join(a[:3]) for a in ISSUE_CASES])
def test_issue_cases(argv, capsys, tmp_path):
    code, _out, err = run(argv, capsys, tmp_path)
    assert_one_line_error(code, err)


@pytest.mark.parametrize("target", ["folder", "a.txt", "nosuffix", "missing/a.png"])
@pytest.mark.parametrize("command", ["attention", "mask", "objective", "prompt"])
def test_bad_export_refused_before_work(command, target, capsys, tmp_path):
    path = tmp_path / target
    if target == "folder":
        path.mkdir()
    code, _out, err = run(BASE[command] + ["--export", str(path)], capsys, tmp_path)
    assert_one_line_error(code, err)
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "nosuffix").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_export_into_read_only_folder_refused(capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        code, _out, err = run(BASE["attention"] + ["--export", str(ro / "a.png")], capsys, tmp_path)
    finally:
        ro.chmod(0o755)
    assert_one_line_error(code, err)


def test_fifo_is_refused_not_read(capsys, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _out, err = run(["mask", "--file", str(fifo)], capsys, tmp_path)  # would block forever if opened
    assert_one_line_error(code, err)
    assert "not a regular file" in err


def test_usage_errors_are_one_line(capsys, tmp_path):
    for argv in (["mask", "--nope"], ["attention", "--layer"], ["prompt", "--shots", "x"], ["nosuch"]):
        code, _out, err = run(argv, capsys, tmp_path)
        assert_one_line_error(code, err)


def test_good_values_still_parse():
    parser = build_parser()
    args = parser.parse_args(["attention", "x", "--threshold", "1", "--head", "0", "--layer", "-1"])
    assert (args.threshold, args.head, args.layer) == (1.0, 0, -1)
    args = parser.parse_args(["prompt", "--query", "q", "--timeout", "0.5", "--top-n", "100", "--seed", "4294967295"])
    assert args.timeout == 0.5 and args.top_n == 100 and args.seed == 2**32 - 1
    assert math.isfinite(parser.parse_args(["objective", "x", "--lambda", "100"]).poisson_lambda)
