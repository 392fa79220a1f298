"""packaging/smoke_bundle.py runs every check even after failures and lists them all; an exit code other than
0 or 2 counts as a crash; the bundle runs with HOME and XDG_* in a temporary folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _smoke_module():
    spec = importlib.util.spec_from_file_location("smoke_bundle", ROOT / "packaging" / "smoke_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_bundle(folder: Path, script: str) -> Path:
    (folder / "_internal").mkdir(parents=True)
    exe = folder / "lm-explorer"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return folder


def test_every_check_runs_and_every_failure_is_listed(tmp_path):
    smoke = _smoke_module()
    bundle = _fake_bundle(tmp_path / "b", 'echo "Traceback: boom" >&2\nexit 1\n')
    failures = smoke.smoke(bundle)
    names = [f.split(":")[0] for f in failures]
    assert names[:8] == ["contents", "version", "models", "info minilm", "info minilm-mlm", "info smollm2",
                         "info gemma3", "window"]
    assert {"finetune frozen", "finetune adapter", "fill minilm-mlm", "prompt smollm2", "bad input", "caches"} \
        <= set(names)
    assert "crashed with 1" in failures[1] and "Traceback: boom" in failures[1]
    assert "kernels/_internals/python_depends.json" in failures[0]


def test_the_bundle_sees_only_a_temporary_home(tmp_path, monkeypatch):
    smoke = _smoke_module()
    monkeypatch.setenv("LM_EXPLORER_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "my-cache"))
    seen = tmp_path / "env.txt"
    bundle = _fake_bundle(tmp_path / "b", f'env > "{seen}"\necho "lm-explorer 9.9"\n')
    s = smoke.Smoke(bundle, tmp_path / "work")
    assert s.run(["--version"]).strip() == "lm-explorer 9.9"
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    work = str(tmp_path / "work")
    assert "LM_EXPLORER_HOME" not in env
    for key in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"):
        assert env[key].startswith(work), (key, env[key])


def test_exit_2_is_a_failure_where_success_was_expected_and_a_pass_where_expected(tmp_path):
    smoke = _smoke_module()
    bundle = _fake_bundle(tmp_path / "b", 'echo "lm-explorer: no such model" >&2\nexit 2\n')
    s = smoke.Smoke(bundle, tmp_path / "work")
    s.check("expects 0", lambda: s.run(["info", "x"]))
    s.check("expects 2", lambda: s.run(["info", "x"], expect=2))
    assert len(s.failures) == 1 and s.failures[0].startswith("expects 0:") and "exited with 2" in s.failures[0]
