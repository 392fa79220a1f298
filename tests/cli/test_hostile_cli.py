"""Issue 25's last unclean CLI cases, in process: a named pipe as a model's weights or as the model list, a model
list of the wrong shape, an export name longer than the file system takes, a damaged GGUF header. Each ends in
one line and exit 2 (or the right answer), never a hang or a traceback."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from explorer.cli import main

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
def fifo_guard():
    """Make named pipes; should a reader block on one (the bug), a writer opens it after a while, writes the given
    bytes and closes it, so the read ends (with the wrong answer) and the test fails instead of hanging."""
    made: list[tuple[Path, bytes]] = []
    stop = threading.Event()

    def make(path: Path, content: bytes = b"") -> Path:
        os.mkfifo(path)
        made.append((path, content))
        return path

    def unblock() -> None:
        while not stop.wait(30):
            for path, content in made:
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO when no reader waits
                except OSError:
                    continue
                try:
                    os.write(fd, content)
                finally:
                    os.close(fd)

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    yield make
    stop.set()


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lm-explorer: "), err
    return lines[0]


def test_a_named_pipe_as_the_weights_is_refused(tiny_factory, tmp_path, capsys, fifo_guard):
    folder = tmp_path / "evil"
    shutil.copytree(tiny_factory("mlm"), folder)
    (folder / "model.safetensors").unlink()
    fifo_guard(folder / "model.safetensors")
    capsys.readouterr()  # the tiny checkpoint's own saving messages
    for argv in (["fill", "a [MASK].", "--model", str(folder)], ["info", str(folder)]):
        assert main(argv) == 2
        line = _one_line(capsys.readouterr().err)
        assert "evil's model.safetensors is a named pipe, not a regular file; the model is not loaded" in line


def test_a_named_pipe_as_the_model_list_is_not_read(data_dir, tiny_factory, capsys, fifo_guard):
    data_dir.mkdir(parents=True, exist_ok=True)
    evil = json.dumps([{"name": "evil", "source": "folder", "location": str(tiny_factory("mlm"))}]).encode()
    fifo_guard(data_dir / "models.json", evil)  # what a blocked reader would get, late
    capsys.readouterr()
    assert main(["info", "evil"]) == 2
    assert "Unknown model 'evil'" in _one_line(capsys.readouterr().err)
    assert main(["models", "--json"]) == 0
    assert {"minilm", "smollm2"} <= {r["name"] for r in json.loads(capsys.readouterr().out)}


def test_a_model_list_of_the_wrong_shape_keeps_its_good_items(data_dir, tiny_factory, capsys):
    good = str(tiny_factory("mlm"))
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "models.json").write_text(json.dumps([
        {"name": 5, "source": "folder", "location": 7},
        {"name": ["x"], "source": "folder", "location": "/tmp"},
        {"name": "aliased", "source": "folder", "location": good, "aliases": 3},
        {"name": "mine", "source": "folder", "location": good},
    ]))
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    captured = capsys.readouterr()
    names = [r["name"] for r in json.loads(captured.out)]
    assert "mine" in names and "aliased" not in names and not captured.err
    assert main(["info", "mine", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["hidden_size"] == 32


def test_an_export_name_over_the_file_system_limit_is_one_line(tmp_path, capsys):
    name = "x" * 300 + ".png"
    assert main(["mask", "hello world", "--samples", "2", "--export", str(tmp_path / name)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "is 304 bytes long" in line and "at most 245 bytes" in line
    deep = str(tmp_path / ("x/" * 3000)) + "chart.png"
    assert main(["mask", "hello world", "--samples", "2", "--export", deep]) == 2
    assert "cannot be used: File name too long" in _one_line(capsys.readouterr().err)
    fits = tmp_path / ("y" * 241 + ".csv")  # 245 bytes: the longest name an export takes
    assert main(["mask", "hello world", "--samples", "2", "--export", str(fits)]) == 0
    assert fits.read_text().startswith("series,unit length")
    assert sorted(p.name for p in tmp_path.iterdir()) == [fits.name]


def _flip(path: Path, offset: int, bit: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ (1 << bit)]))


def test_a_gguf_with_a_flipped_bit_in_a_tensor_shape_is_refused_before_converting(tmp_path, capsys):
    """One bit of a tensor's shape flipped: refused from the header in one line (it failed after a minute of
    de-quantising, pointing at a 'report above' that was never shown)."""
    from gguf import GGUFReader

    from explorer.core.models import catalog
    from explorer.core.models.gguf import gguf_summary

    source = Path(catalog.resolve("smollm2").location) / SMOLLM2_GGUF
    copy = tmp_path / "flipped.gguf"
    shutil.copyfile(source, copy)
    tensor = next(t for t in GGUFReader(source).tensors if len(t.shape) == 1 and t.tensor_type == 0)
    name_len = len(tensor.name.encode())
    _flip(copy, tensor.field.offset + 8 + name_len + 4, 1)  # its first dimension: 576 -> 578
    assert gguf_summary(source)[1] > 0  # the untouched file reads as ever
    assert main(["info", str(copy)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"flipped.gguf is damaged: its GGUF header cannot be read (tensor {tensor.name}'s 2,312 bytes run " \
           "past the next tensor)" in line


def test_transformers_mismatch_report_is_said_as_damage():
    from explorer.core.models.catalog import ModelEntry
    from explorer.core.models.gguf import _gguf_load_error

    entry = ModelEntry(name="m", source="folder", location="/nowhere", gguf_file="m.gguf")
    err = RuntimeError("You set `ignore_mismatched_sizes` to `False`, thus raising an error. For details look at "
                       "the above report!")
    message = str(_gguf_load_error(entry, err))
    assert message.startswith("m.gguf is damaged: its tensors do not match") and "report" not in message
