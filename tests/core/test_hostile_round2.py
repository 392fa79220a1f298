"""Issue 25, hostile input round two: non-finite results are errors, exports are strict JSON and spreadsheet-safe
CSV, a tokenizer that cannot read text is refused, and a hostile HTTP server (dripping bytes, endless lines,
broken status lines, headers or chunks, deep or NaN JSON) ends in one clear error within the timeout."""

from __future__ import annotations

import csv
import io
import json
import math
import socket
import threading
import time

import pytest

from explorer.core.io.charts import ChartSpec, Series, write_chart_data
from explorer.core.io.errors import ModelError
from explorer.core.prompting.backends import OpenAIBackend
from explorer.core.prompting.generation import GenerationSettings
from explorer.core.prompting.scoring import OptionScore, pick_best

# ------------------------------------------------------------------ non-finite results


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_label_is_never_picked_from_non_finite_scores(bad):
    options = [OptionScore(" positive", -1.0, ["a"], [-1.0]), OptionScore(" negative", bad, ["b"], [bad])]
    for normalize in ("mean", "sum"):
        with pytest.raises(ModelError, match="negative.*not a finite number"):
            pick_best(options, normalize)


def test_exported_json_is_strict_and_csv_is_spreadsheet_safe(tmp_path):
    spec = ChartSpec("=cmd|' /C calc'!A0", series=[
        Series("=HYPERLINK(\"http://x\")", [0.0, 1.0, 2.0], [float("nan"), -0.5, float("inf")],
               hover=["+1+1", "@SUM(A1)", "\tTAB"]),
        Series("-2+3", [0.0], [1.0], hover=["\rCR"]),
    ])
    write_chart_data(spec, tmp_path / "c.json")

    def refuse(name):
        raise AssertionError(f"{name} in exported JSON")

    data = json.loads((tmp_path / "c.json").read_text(), parse_constant=refuse)
    assert data["series"][0]["y"] == [None, -0.5, None]
    write_chart_data(spec, tmp_path / "c.csv")
    rows = list(csv.reader(io.StringIO((tmp_path / "c.csv").read_text())))
    cells = [c for row in rows for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _number(c))]
    assert "'=HYPERLINK(\"http://x\")" in cells and "'+1+1" in cells and "'@SUM(A1)" in cells
    assert "'-2+3" in cells and "-0.5" in cells  # a negative number stays a number


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text)) or True
    except ValueError:
        return False


def test_a_folder_whose_tokenizer_cannot_read_text_is_refused(tiny_factory, tmp_path):
    import shutil

    from explorer.core.models.loading import load_model

    folder = tmp_path / "no-vocab"
    shutil.copytree(tiny_factory("sequence-classification"), folder)
    tok = json.loads((folder / "tokenizer.json").read_text())
    tok["model"]["vocab"] = {k: v for k, v in tok["model"]["vocab"].items() if k.startswith("[")}  # specials only
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    (folder / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    with pytest.raises(ModelError, match="tokenizer .* not usable.*\\[UNK\\]"):
        load_model(str(folder))


# ------------------------------------------------------------------ hostile HTTP servers


class RawServer:
    """A TCP server answering every connection with ``reply(conn)``: whatever bytes a broken server sends."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn) -> None:
        try:
            conn.settimeout(5)
            conn.recv(65536)  # the request (small)
            self.reply(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def _drip(head: bytes):
    def reply(conn, stop):
        conn.sendall(head)
        while not stop.is_set():
            conn.sendall(b" ")
            time.sleep(0.2)
    return reply


def _send(data: bytes):
    def reply(conn, stop):
        conn.sendall(data)
    return reply


def _endless_line(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: ")
    block = b"x" * 65536
    for _ in range(40):  # 2.6 MB without a newline
        if stop.is_set():
            return
        conn.sendall(block)


def _ok(body: bytes, ctype: str = "application/json") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


CASES = {
    "drip-body": _drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"),
    "drip-headers": _drip(b"HTTP/1.1 200 OK\r\nX-Slow: "),
    "drip-stream": _drip(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: keep"),
    "bad-status-line": _send(b"HTTX/9 what\r\n\r\n"),
    "many-headers": _send(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(150)) + b"\r\n{}"),
    "long-header": _send(b"HTTP/1.1 200 OK\r\nX-Long: " + b"y" * 70000 + b"\r\n\r\n{}"),
    "bad-chunks": _send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        b"zz\r\n{}\r\n0\r\n\r\n"),
    "incomplete-body": _send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
                             b'{"choices": [{"te'),
    "deep-json": _send(_ok(b"[" * 100_000 + b"]" * 100_000)),
    "nan-json": _send(_ok(b'{"choices": [{"text": "", "logprobs": {"tokens": ["a", " positive"], '
                          b'"token_logprobs": [NaN, -Infinity], "text_offset": [0, 1]}}]}')),
    "endless-line": _endless_line,
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("call", ["generate", "score", "models"])
def test_hostile_server_is_one_clear_error_within_the_timeout(case, call):
    server = RawServer(CASES[case])
    try:
        backend = OpenAIBackend(server.url, "m", timeout=2)
        started = time.monotonic()
        with pytest.raises(ModelError) as info:
            if call == "generate":
                backend.generate("Hi", GenerationSettings(max_new_tokens=3))
            elif call == "score":
                backend.score("Review: fine. Sentiment:", [" positive", " negative"])
            else:
                backend.models()
        assert time.monotonic() - started < 8  # the timeout (2 s) bounds the whole request, dripping or not
        message = str(info.value)
        assert "\n" not in message and len(message) < 600, message
    finally:
        server.close()


def test_a_healthy_stream_outlives_the_timeout_with_the_idle_timeout():
    """Tokens every 0.3 s for ~2.4 s with --timeout 1: each token resets the idle timer, so it completes."""

    def stream(conn, stop):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
        for i in range(8):
            time.sleep(0.3)
            event = {"choices": [{"text": f" w{i}", "finish_reason": None}]}
            conn.sendall(b"data: " + json.dumps(event).encode() + b"\n\n")
        conn.sendall(b"data: [DONE]\n\n")

    server = RawServer(stream)
    try:
        backend = OpenAIBackend(server.url, "m", timeout=1)
        result = backend.generate("Hi", GenerationSettings(max_new_tokens=8))
        assert result.text == "".join(f" w{i}" for i in range(8))
    finally:
        server.close()


@pytest.mark.parametrize("case", ["drip-stream", "bad-status-line", "nan-json", "deep-json"])
def test_cli_against_hostile_servers_is_one_line_exit_2(case, capsys):
    from explorer.cli import main

    server = RawServer(CASES[case])
    try:
        for argv in (["prompt", "--query", "Hi", "--max-new-tokens", "3"],
                     ["prompt", "--task", "sentiment", "--score"]):
            code = main([*argv, "--endpoint", server.url, "--timeout", "2"])
            err = capsys.readouterr().err
            assert code == 2 and len(err.strip().splitlines()) == 1 and "unexpected" not in err, err
    finally:
        server.close()


# ------------------------------------------------------------------ the boundary for untrusted bytes


def test_argv_that_is_not_utf8_is_one_line(capsys):
    from explorer.cli import main

    assert main(["mask", "caf\udce9 au lait"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not valid text" in err


def test_standard_input_goes_through_the_text_limits():
    from explorer.core.io.errors import InputError
    from explorer.core.io.fileio import read_text_stream

    with open("/dev/zero", "rb") as zero, pytest.raises(InputError, match="binary"):
        read_text_stream(zero)  # reads 10 MB, never more
    assert read_text_stream(io.BytesIO("café au lait".encode("latin-1"))).text == "café au lait"
    long = read_text_stream(io.BytesIO(b"word " * 20 + b"\n" + b"more\n" * 100), max_bytes=300)
    assert long.text.endswith("\n") and len(long.text) <= 300 and "limit" in long.note


def test_data_files_through_the_limits(tmp_path):
    from explorer.core.io.errors import InputError
    from explorer.core.prompting.tasks import load_task_file
    from explorer.core.tuning.datasets import load_task_data

    ok = tmp_path / "wide.csv"
    ok.write_text("text,label\n" + "".join(f"{'x' * 200_000} {i},{'ab'[i % 2]}\n" for i in range(10)))
    assert len(load_task_data(ok, seed=0).train) == 8  # a 200 kB field (Python's csv stops at 128 kB) reads
    huge = tmp_path / "huge.csv"
    huge.write_text("text,label\n" + "x" * 1_100_000 + ",a\nshort,b\n")
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"text": "a", "label": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    deep_list = tmp_path / "deep.json"
    deep_list.write_text("[" * 100_000 + "]" * 100_000)
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"text": "a", "label": NaN}\n')
    for path in (huge, deep, deep_list, nan):
        for load in (lambda p: load_task_data(p, seed=0), load_task_file):
            with pytest.raises(InputError) as info:
                load(path)
            assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize("field, value", [("num_hidden_layers", 10**9), ("vocab_size", 10**12),
                                          ("hidden_size", 10**7), ("num_hidden_layers", -3)])
def test_a_config_claiming_impossible_sizes_is_refused_before_allocation(tmp_path, tiny_factory, field, value, capsys):
    import shutil

    from explorer.cli import main
    from explorer.core.models.loading import load_model
    from explorer.core.models.memory import estimate_load_bytes

    folder = tmp_path / "evil"
    shutil.copytree(tiny_factory("mlm"), folder)
    config = json.loads((folder / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    for safetensors in folder.glob("*.safetensors"):
        safetensors.unlink()  # the estimate then builds the config's model on the meta device: refused first
    for call in (estimate_load_bytes, load_model):
        with pytest.raises(ModelError, match="range"):
            call(str(folder))
    capsys.readouterr()
    assert main(["fill", "a [MASK].", "--model", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "range" in err


@pytest.mark.parametrize("template", ["{text:>300000000} {output}", "{text!r} {output}", "{text.__class__} {output}",
                                      "{text[0]} {output}"])
def test_template_fields_are_plain_names(template):
    from explorer.core.io.errors import InputError
    from explorer.core.prompting.prompts import Example, PromptTemplate

    t = PromptTemplate(template=template)
    with pytest.raises(InputError, match="plain"):
        t.validate()
    with pytest.raises(InputError, match="plain"):
        t.demo(Example({"text": "a"}, "b"))


# ------------------------------------------------------------------ chat templates in a sandbox with a budget

BAD_TEMPLATES = {
    "raises": "{{ raise_exception('this template refuses') }}",
    "missing-attribute": "{{ messages.nothing.here() }}",
    "recursion": "{% macro f(x) %}{{ f(x) }}{% endmacro %}{{ f(1) }}",
    "endless-loop": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "grows": "{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxx' }}{% endfor %}",
    "huge-string": "{{ 'x' * 1000000000 }}",
    "huge-power": "{{ 2 ** 100000000 }}",
    "escape": "{{ messages.__class__.__mro__[1].__subclasses__() }}",
    "mutation": "{{ messages.append({'role': 'x'}) }}",
}


class _Tok:
    special_tokens_map = {"eos_token": "</s>"}

    def __init__(self, template: str) -> None:
        self.chat_template = template


@pytest.mark.parametrize("name", sorted(BAD_TEMPLATES))
def test_a_hostile_chat_template_is_stopped_in_the_sandbox(name):
    from explorer.core.prompting.chat_template import TemplateProblem, render_chat

    started = time.monotonic()
    with pytest.raises(TemplateProblem):
        render_chat(_Tok(BAD_TEMPLATES[name]), [{"role": "user", "content": "hi"}], True)
    assert time.monotonic() - started < 30


def test_a_good_chat_template_renders_and_a_bad_one_falls_back_to_the_raw_prompt(tiny_factory):
    from transformers import AutoTokenizer

    from explorer.core.prompting.prompts import Example, PromptTemplate, build_prompt

    tok = AutoTokenizer.from_pretrained(str(tiny_factory("causal-lm")))
    tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    template = PromptTemplate(template="Q: {input}\nA: {output}")
    demos, query = [Example({"input": "1+1"}, "2")], Example({"input": "2+2"}, "4")
    chat = build_prompt(template, demos, query, tok, 64, chat=True)
    assert chat.chat and chat.text == "<user>Q: 1+1\nA:<assistant>2<user>Q: 2+2\nA:<assistant>" and not chat.note
    tok.chat_template = BAD_TEMPLATES["recursion"]
    fallback = build_prompt(template, demos, query, tok, 64, chat=True)
    assert not fallback.chat and fallback.text == build_prompt(template, demos, query, tok, 64).text
    assert "chat template could not be used" in fallback.note and "raw" in fallback.note


def test_first_long_line_finds_a_line_over_the_limit_in_any_text():
    from explorer.core.io.limits import first_long_line, too_long_to_show

    assert first_long_line("", 5) == 0 and first_long_line("abc\nde", 5) == 0 and first_long_line("\n" * 99, 5) == 0
    assert first_long_line("a" * 5 + "\n" + "b" * 5, 5) == 0
    assert first_long_line("ab\n" + "c" * 6, 5) == 6
    assert first_long_line("a" * 5 + "\n" + "b" * 6 + "\nc", 5) == 6
    assert first_long_line("x" * 70_000) == 70_000
    assert too_long_to_show("fine\n" * 10, "note.txt") == ""
    assert too_long_to_show("x" * 70_000, "note.txt").startswith("note.txt has a line of 70,000 characters")


def test_panel_settings_are_checked_field_by_field():
    from explorer.core.io.limits import MAX_SHOWN_LINE
    from explorer.core.io.session import check_settings

    defaults = {"seed": 0, "ratio": 0.15, "chat": False, "text": "", "rows": [], "query": {}, "any": None}
    saved = {"seed": 2**40, "ratio": 1, "chat": 1, "text": "x" * (MAX_SHOWN_LINE + 1), "rows": [["a"]],
             "query": [], "any": {"deep": [1]}, "newer": [1]}
    usable, notes = check_settings(defaults, saved, {"rows": lambda v: all(len(r) == 2 for r in v)})
    assert usable == {"ratio": 1, "any": {"deep": [1]}, "newer": [1]}  # a newer version's field is kept
    assert [n.split(" (")[0] for n in notes] == ["seed", "chat", "text", "rows", "query"]
    assert check_settings(defaults, {"seed": 2**31 - 1, "text": "fine\n" * 3}) == ({"seed": 2**31 - 1,
                                                                                    "text": "fine\n" * 3}, [])


def test_the_qa_sniff_of_a_data_file_survives_deep_json(tmp_path):
    """finetune --data peeks at a JSONL file's first line to pick the QA task: a line nested 100,000 deep is not a
    QA record (the peek raised RecursionError, an 'unexpected error' on the command line)."""
    from explorer.core.tuning.squad import looks_like_qa

    deep = tmp_path / "deep.jsonl"
    deep.write_bytes(b'{"text": "a", "label": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    assert looks_like_qa(deep) is False
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who?", "context": "Ann did.", "answers": ["Ann"]}\n')
    assert looks_like_qa(qa) is True


def test_qa_and_pair_files_nested_deep_are_one_line_errors(tmp_path):
    """The QA and seq2seq data loaders read JSON through the limits: a row nested 100,000 deep is an InputError
    naming its line (json.loads raised RecursionError), and the pairs sniff says it is no pair file."""
    from explorer.core.io.errors import InputError
    from explorer.core.tuning.pairs import load_pairs, looks_like_pairs
    from explorer.core.tuning.squad import read_examples

    deep = b"[" * 100_000 + b"]" * 100_000
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(b'{"input": "a", "output": "b"}\n' * 3 + b'{"input": "a", "output": ' + deep + b"}\n")
    with pytest.raises(InputError, match=r"pairs.jsonl, line 4 cannot be used: it nests deeper than 64 levels"):
        load_pairs(pairs)
    assert looks_like_pairs(pairs) is True  # its first line is a pair
    lead = tmp_path / "lead.jsonl"
    lead.write_bytes(b'{"input": ' + deep + b"}\n")
    assert looks_like_pairs(lead) is False
    qa = tmp_path / "qa.jsonl"
    qa.write_bytes(b'{"question": "Who?", "context": ' + deep + b"}\n")
    with pytest.raises(InputError, match=r"qa.jsonl, line 1 cannot be used: it nests deeper than 64 levels"):
        read_examples(qa)
