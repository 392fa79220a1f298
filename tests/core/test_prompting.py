"""Prompt builder, tasks and label scoring (the builder on the real SmolLM2 tokenizer, scoring on its weights)."""

from __future__ import annotations

import json

import pytest

from explorer.core.io.errors import InputError
from explorer.core.prompting.prompts import (
    Example,
    PromptTemplate,
    build_prompt,
    count_tokens,
    is_correct,
    normalize_answer,
)
from explorer.core.prompting.tasks import BUILTIN, arithmetic_items, builtin_task, load_task, load_task_file

QA = PromptTemplate("Answer the questions.", "Q: {question}\nA: {output}")
DEMOS = [Example({"question": "What is 2 plus 2?"}, "4"), Example({"question": "Capital of Italy?"}, "Rome")]
QUERY = Example({"question": "Capital of France?"}, "Paris")


def test_prompt_is_description_demos_joined_by_newlines_then_query():
    built = build_prompt(QA, DEMOS, QUERY)
    assert built.text == (
        "Answer the questions.\n"
        "Q: What is 2 plus 2?\nA: 4\n"
        "Q: Capital of Italy?\nA: Rome\n"
        "Q: Capital of France?\nA:"
    )
    # The space before {output} moves to the answer: the model scores " Paris", not "Paris" after "A: ".
    assert built.answer_prefix == " "
    assert [p.kind for p in built.parts if p.kind != "separator"] == ["description", "demo", "demo", "query"]
    assert build_prompt(QA, [], QUERY).text == "Answer the questions.\nQ: Capital of France?\nA:"


def test_custom_separator_and_no_description():
    t = PromptTemplate("", "{word} => {output}", separator="\n\n")
    built = build_prompt(t, [Example({"word": "cheese"}, "fromage")], Example({"word": "sea otter"}, ""))
    assert built.text == "cheese => fromage\n\nsea otter =>"


def test_template_errors_are_explained():
    with pytest.raises(InputError, match=r"\{output\}"):
        build_prompt(PromptTemplate("", "Q: {question}"), [], QUERY)
    with pytest.raises(InputError, match="question"):
        build_prompt(PromptTemplate("", "Q: {question}\nA: {output}"), [], Example({"text": "x"}, "y"))


def test_token_count_is_exact_and_checked_against_context(smollm2):
    tok = smollm2.tokenizer
    built = build_prompt(QA, DEMOS, QUERY, tok, smollm2.max_length)
    assert built.n_tokens == len(tok(built.text)["input_ids"]) == count_tokens(tok, built.text)
    assert built.fits and built.context_length == smollm2.max_length
    longer = build_prompt(QA, DEMOS * 3, QUERY, tok, smollm2.max_length)
    assert longer.n_tokens > built.n_tokens
    tight = build_prompt(QA, DEMOS, QUERY, tok, context_length=built.n_tokens - 1)
    assert not tight.fits


def test_chat_template_turns(smollm2):
    tok = smollm2.tokenizer
    built = build_prompt(QA, DEMOS, QUERY, tok, smollm2.max_length, chat=True)
    assert built.chat and built.answer_prefix == ""
    assert built.text.startswith("<|im_start|>system\nAnswer the questions.<|im_end|>")
    assert "<|im_start|>assistant\nRome<|im_end|>" in built.text
    assert built.text.endswith("<|im_start|>user\nQ: Capital of France?\nA:<|im_end|>\n<|im_start|>assistant\n")
    assert built.n_tokens == len(tok(built.text, add_special_tokens=False)["input_ids"])
    assert built.text.count("<|im_start|>") == 1 + 2 * len(DEMOS) + 2  # system, turns, query, assistant


def test_answers_are_normalised_for_exact_match():
    assert normalize_answer(" 127\nA: 5") == "127"
    assert normalize_answer("The Pacific Ocean.") == "pacific ocean"
    assert is_correct(" -12\n", Example({}, "-12"))
    assert not is_correct(" 12", Example({}, "-12"))
    assert is_correct(" Shakespeare", Example({}, "William Shakespeare", ["Shakespeare"]))


def test_arithmetic_items_are_seeded_two_digit_and_right():
    a = arithmetic_items("plus", 50, seed=1)
    assert a == arithmetic_items("plus", 50, seed=1)
    assert a != arithmetic_items("plus", 50, seed=2)
    assert len({(e.fields["a"], e.fields["b"]) for e in a}) == 50
    for e in a:
        x, y = int(e.fields["a"]), int(e.fields["b"])
        assert 10 <= x <= 99 and 10 <= y <= 99 and int(e.output) == x + y
    for e in arithmetic_items("minus", 50, seed=1):
        assert int(e.output) == int(e.fields["a"]) - int(e.fields["b"])


def test_builtin_tasks_load():
    for name in BUILTIN:
        task = builtin_task(name)
        assert len(task.items) >= 30
        if task.mode == "score":
            assert task.labels and all(e.output in task.labels for e in task.items)
        build_prompt(task.template, task.items[:2], task.items[2])  # every item fits its template
    assert builtin_task("nli").labels == ["true", "false", "neither"]
    with pytest.raises(InputError, match="Unknown task"):
        load_task("multiplication")


def test_user_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text("text,label\nGreat film,good\nAwful film,bad\nLovely,good\nDull,bad\n", encoding="utf-8")
    task = load_task_file(csv_path)
    assert task.mode == "score" and task.labels == ["good", "bad"]
    assert task.template.template == "Text: {text}\nLabel: {output}"
    assert task.items[1].fields == {"text": "Awful film"} and task.items[1].output == "bad"

    jl = tmp_path / "capitals.jsonl"
    rows = [{"question": f"Capital number {i}?", "answer": f"City{i}", "answers": [f"C{i}"]} for i in range(6)]
    jl.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    task = load_task_file(jl)
    assert task.mode == "generate" and task.items[2].accepted() == ["City2", "C2"]


def test_row_identifiers_stay_out_of_the_prompt():
    """The bundled dates and QA sets carry "id" / "context_id": the model never sees them in a prompt."""
    from explorer.core.io.paths import resources_dir

    dates = load_task_file(resources_dir() / "data" / "dates.jsonl")
    assert dates.template.template == "Input: {input}\nAnswer: {output}"
    prompt = build_prompt(dates.template, dates.items[:2], dates.items[2]).text
    assert "date-0" not in prompt and "Id:" not in prompt
    qa = load_task_file(resources_dir() / "data" / "qa.jsonl")
    assert "{id}" not in qa.template.template and "{context_id}" not in qa.template.template
    assert "{question}" in qa.template.template and "{context}" in qa.template.template


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "empty"),
        ("short.csv", "text,label\nfine,good\nbroken\n", "line 3"),
        ("nolabel.csv", "text,label\nfine,\n", "line 2.*output"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": \n', "line 2.*not valid JSON"),
        ("list.jsonl", '["a", "b"]\n', "not an object"),
        ("onecol.csv", "label\nx\n", "name every column|input column"),
    ],
)
def test_user_file_errors_point_at_the_problem(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_task_file(p)


def test_scoring_picks_the_label_with_highest_logprob(smollm2):
    import torch

    from explorer.core.prompting.scoring import score_options

    prompt = "The capital of France is"
    options = [" Paris", " London", " a banana split"]
    res = score_options(smollm2, prompt, options, normalize="sum")
    # Independent check: one forward per option over prompt + option tokens.
    tok, model = smollm2.tokenizer, smollm2.model
    manual = []
    for o in options:
        ctx = tok(prompt)["input_ids"]
        cont = tok(o, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ctx + cont])).logits[0]  # [position, vocab]
        lp = torch.log_softmax(logits, -1)
        manual.append(sum(float(lp[len(ctx) - 1 + i, t]) for i, t in enumerate(cont)))
    for got, want in zip(res.options, manual, strict=True):
        assert got.logprob == pytest.approx(want, abs=1e-3)
    assert res.best == max(range(len(options)), key=lambda i: manual[i])
    assert res.prediction == " Paris"
    assert res.options[2].n_tokens > 1 and len(res.options[2].token_logprobs) == res.options[2].n_tokens
    # Per-token normalisation may choose differently from the sum; it is the maximum of the means.
    mean = score_options(smollm2, prompt, options, normalize="mean")
    assert mean.best == max(range(3), key=lambda i: manual[i] / mean.options[i].n_tokens)
    assert sum(mean.probabilities()) == pytest.approx(1.0)
