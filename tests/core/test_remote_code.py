"""A model folder that names its own Python code (``auto_map``) never gets that code run, and nothing reads stdin."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.tiny import make_tiny_checkpoint

EVIL = '''
import pathlib
pathlib.Path({marker!r}).write_text("ran")
from transformers import BertConfig


class EvilConfig(BertConfig):
    model_type = "bert"
'''


@pytest.fixture
def evil_folder(tmp_path):
    folder = make_tiny_checkpoint(tmp_path / "evil", "base")
    marker = tmp_path / "MARKER"
    (folder / "evil_config.py").write_text(EVIL.format(marker=str(marker)))
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil_config.EvilConfig", "AutoModel": "evil_config.EvilConfig"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, marker


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["attention", "Hello there.", "--model"]])
def test_cli_refuses_custom_code_without_reading_stdin(evil_folder, tmp_path, command):
    folder, marker = evil_folder
    args = [sys.executable, "-m", "explorer", *command]
    args.insert(args.index("info") + 1 if "info" in args else len(args), str(folder))
    env_home = {"LM_EXPLORER_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    import os

    done = subprocess.run(args, input="y\ny\ny\n", capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env_home})
    assert done.returncode == 2, done.stderr
    assert not marker.exists()
    assert "own Python code" in done.stderr and "Traceback" not in done.stderr
    assert "[y/N]" not in done.stdout + done.stderr  # transformers never asked


def test_core_load_and_describe_refuse(evil_folder):
    from explorer.core.io.errors import ModelError
    from explorer.core.models.loading import describe, load_model

    folder, marker = evil_folder
    for fn in (load_model, describe):
        with pytest.raises(ModelError, match="own Python code"):
            fn(str(folder))
    assert not marker.exists()
