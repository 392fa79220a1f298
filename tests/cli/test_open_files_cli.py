"""``lm-explorer FILE...``: which command lines open the window with files, and which go to argparse."""

from __future__ import annotations

from explorer import cli
from explorer.cli import build_parser, command_names, files_to_open

COMMANDS = command_names(build_parser())


def test_command_names_are_the_subcommands():
    assert {"models", "info", "attention", "similarity", "prompt", "finetune"} <= COMMANDS


def test_existing_files_open_the_window(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").write_text("no suffix, but it exists")
    (tmp_path / "b.txt").write_text("b")
    assert files_to_open(["notes", "b.txt"], COMMANDS) == ["notes", "b.txt"]
    # A path-looking argument opens even when missing: the window reports it, as for a dropped file.
    assert files_to_open(["missing.txt"], COMMANDS) == ["missing.txt"]
    assert files_to_open([str(tmp_path / "gone" / "x")], COMMANDS) == [str(tmp_path / "gone" / "x")]


def test_commands_win_over_files_named_like_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").write_text("a file called models")
    assert files_to_open(["models"], COMMANDS) is None
    assert files_to_open(["./models"], COMMANDS) == ["./models"]
    assert files_to_open(["--", "models"], COMMANDS) == ["models"]
    assert files_to_open(["--version"], COMMANDS) is None
    assert files_to_open([], COMMANDS) is None


def test_misspelt_command_is_an_argparse_error_not_a_window(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    opened = []
    monkeypatch.setattr("explorer.gui.app.main", lambda **kw: opened.append(kw) or 0)
    assert cli.main(["modles"]) == 2
    assert "invalid choice: 'modles'" in capsys.readouterr().err
    assert opened == []


def test_main_hands_files_to_the_window(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("hello")
    opened = []
    monkeypatch.setattr("explorer.gui.app.main", lambda **kw: opened.append(kw) or 0)
    assert cli.main(["a.txt", "b.md"]) == 0
    assert cli.main([]) == 0
    assert opened == [{"files": ["a.txt", "b.md"]}, {"files": []}]
