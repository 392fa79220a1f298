"""``lm-explorer prompt`` (build a GPT-3 style prompt, generate or score) and ``lm-explorer sweep`` (accuracy vs K)."""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from explorer.commands._common import (
    add_seed_arg,
    export_chart,
    export_path,
    finite_float,
    int_range,
    load,
    print_json,
    stderr_progress,
)
from explorer.core.io.errors import InputError


def key_env_name(text: str) -> str:
    """argparse ``type=`` for ``--api-key-env``: a variable name; a pasted key is refused without repeating it."""
    from explorer.core.prompting.backends import check_key_env_name

    try:
        return check_key_env_name(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err).rstrip(".")) from None


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="local causal LM (alias, folder, hub id), or the model name "
                   "on the endpoint with --endpoint (default: smollm2); sweep takes several, comma-separated "
                   "(--model smollm2,gemma3)")
    p.add_argument("--endpoint", metavar="URL", help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) "
                   "instead of a local model")
    p.add_argument("--api-key-env", type=key_env_name, default=None, metavar="VAR",
                   help="NAME of the environment variable holding this endpoint's API key (else the system "
                   "keyring's entry for the URL). No key is sent unless one is tied to the endpoint this way")
    p.add_argument("--timeout", type=finite_float(0.0, 86_400.0, lo_open=True), default=30.0,
                   help="seconds a whole request to the endpoint may take, and a stream's wait for its first "
                   "token; trickled bytes never extend it (default 30, at most a day)")
    p.add_argument("--idle-timeout", type=finite_float(0.0, 86_400.0, lo_open=True), default=None,
                   help="seconds a healthy stream may go without a new token before it is ended (default: --timeout)")
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")


def _task_args(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--task", help="built-in task: addition, subtraction, sentiment, nli, qa")
    g.add_argument("--data", metavar="FILE", help="your labelled CSV/TSV/JSONL file, or a data set the project "
                   "ships, by name: sentiment, entailment, qa, qa-test, dates, dates-test")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prompt", help="build a zero/one/few-shot prompt and run it (generate, or score labels)")
    _add_backend_args(p)
    _task_args(p, required=False)
    p.add_argument("--shots", type=int_range(0, 1000), default=0, help="number of demonstrations K (default 0)")
    p.add_argument("--query", help="the query (fills the task's first input field; without a task: the whole prompt)")
    p.add_argument("--item", type=int_range(0, 10_000_000), default=None,
                   help="use this task item as the query (default: a held-out one)")
    p.add_argument("--description", help="task description put before the examples (overrides the task's)")
    p.add_argument("--template", help="template with {fields} and {output}, e.g. 'Q: {input}\\nA: {output}'")
    p.add_argument("--max-new-tokens", type=int_range(1, 4096), default=None,
                   help="tokens to generate, 1–4096 (default: the task's, else 32)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=finite_float(0.0, 100.0, lo_open=True), default=1.0,
                   help="sampling temperature, in (0, 100] (default 1)")
    p.add_argument("--top-k", type=int_range(0, 1_000_000), default=0, help="sample from the K likeliest (0 = off)")
    p.add_argument("--top-p", type=finite_float(0.0, 1.0, lo_open=True), default=1.0, help="nucleus share, in (0, 1]")
    p.add_argument("--stop", action="append", default=None, help="stop sequence (repeatable; '\\n' allowed)")
    add_seed_arg(p, help="seed for the demonstrations and for sampling")
    p.add_argument("--score", action="store_true", help="score the task's labels instead of generating")
    p.add_argument("--top-n", type=int_range(1, 100), default=5,
                   help="alternatives per step in --json output, 1–100 (default 5)")
    p.add_argument("--export", type=export_path, metavar="FILE",
                   help="next-token distribution of the first step (or option scores) "
                   "as .png/.svg/.csv/.json")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_prompt)

    p = sub.add_parser("sweep", help="accuracy vs number of demonstrations K (GPT-3's few-shot curve)")
    _add_backend_args(p)
    _task_args(p, required=True)
    p.add_argument("--shots", default="0,1,2,4,8", help="comma-separated K values (default 0,1,2,4,8)")
    p.add_argument("--draws", type=int_range(1, 1000), default=3,
                   help="random draws of the demonstrations per K, 1–1000 (default 3)")
    p.add_argument("--limit", type=int_range(1, 10_000_000), default=50,
                   help="how many query items to evaluate (default 50)")
    add_seed_arg(p)
    p.add_argument("--mode", choices=("score", "generate"), help="label-word scoring or exact-match generation "
                   "(default: the task's)")
    p.add_argument("--normalize", choices=("mean", "sum"), default="mean",
                   help="compare options by per-token (mean) or summed log-probability (default mean)")
    p.add_argument("--ci", choices=("wilson", "bootstrap"), default="wilson", help="95%% interval (default wilson)")
    p.add_argument("--details", action="store_true", help="include every evaluated item in --json output")
    p.add_argument("--export", type=export_path, metavar="FILE", help="the accuracy-vs-K chart as .png/.svg/.csv/.json")
    p.add_argument("--export-size", type=export_path, metavar="FILE", help="the accuracy-vs-model-size chart (one "
                   "line per K, log x; needs local models) as .png/.svg/.csv/.json")
    p.add_argument("--size-axis", choices=("parameters", "non_embedding"), default="parameters",
                   help="x of the size chart: all parameters (GPT-3's figure) or without embeddings (Kaplan et al.)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_sweep_cmd)


def _backend(args: argparse.Namespace) -> Any:
    from explorer.core.prompting.backends import LocalBackend, OpenAIBackend

    if args.endpoint:
        return OpenAIBackend(args.endpoint, args.model or "", args.api_key_env, args.timeout,
                             idle_timeout=args.idle_timeout)
    return LocalBackend(load(args.model or "smollm2"))


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n").replace("\\t", "\t")


def _load_task(args: argparse.Namespace) -> Any:
    from explorer.core.prompting.tasks import load_task, load_task_file

    if getattr(args, "data", None):
        from explorer.core.io.bundled_data import resolve_data

        return load_task_file(resolve_data(args.data))
    if getattr(args, "task", None):
        return load_task(args.task, seed=args.seed)
    return None


def run_prompt(args: argparse.Namespace) -> int:
    from explorer.core.prompting.generation import GenerationSettings, step_chart
    from explorer.core.prompting.prompts import Example, PromptTemplate, build_prompt, is_correct
    from explorer.core.prompting.scoring import score_chart
    from explorer.core.prompting.sweep import split_items

    task = _load_task(args)
    if args.shots < 0:
        raise InputError("--shots must be 0 or more.")
    if task is None:
        if not args.query:
            raise InputError("Give --task, --data or --query.")
        if args.shots:
            raise InputError("--shots needs examples: give --task or --data.")
    if args.score and (task is None or not task.labels):
        raise InputError("--score needs a task with a fixed label set (e.g. --task sentiment or nli).")
    backend = _backend(args)
    tokenizer = getattr(backend, "tokenizer", None)
    expected: Example | None = None
    if task is None:
        template = PromptTemplate("", _unescape(args.template) if args.template else "{input}{output}",
                                  description_separator="\n")
        if args.description:
            template.description = _unescape(args.description)
        query = Example({f: "" for f in template.field_names()})
        first = template.field_names()[0] if template.field_names() else None
        if first is None:
            raise InputError("The template has no input field for --query.")
        query.fields[first] = _unescape(args.query)
        built = build_prompt(template, [], query, tokenizer, backend.context_length, chat=args.chat)
        stop: list[str] = []
        max_new = args.max_new_tokens or 32
        mode = "generate"
    else:
        template = task.template
        if args.template:
            template = PromptTemplate(template.description, _unescape(args.template), template.separator)
        if args.description is not None:
            template.description = _unescape(args.description)
        queries, pool = split_items(len(task.items), None, args.shots, args.seed)
        demos = [task.items[i] for i in random.Random(f"draw-{args.seed}-0").sample(pool, len(pool))[: args.shots]]
        if args.query:
            fields = list(task.items[0].fields)
            query = Example({f: "" for f in fields})
            query.fields[fields[0]] = _unescape(args.query)
        else:
            index = queries[0] if args.item is None else args.item
            if not 0 <= index < len(task.items):
                raise InputError(f"--item must be between 0 and {len(task.items) - 1}.")
            query = expected = task.items[index]
        built = build_prompt(template, demos, query, tokenizer, backend.context_length, chat=args.chat)
        stop = [] if args.chat else list(task.stop)
        max_new = args.max_new_tokens or task.max_new_tokens
        mode = "score" if args.score else "generate"
    if built.note:
        print(f"lm-explorer: note: {built.note}", file=sys.stderr)
    if not built.fits:
        raise InputError(f"The prompt has {built.n_tokens} tokens, more than the model's context of {built.context_length}.")
    if args.stop is not None:
        stop = [_unescape(s) for s in args.stop]
    out: dict[str, Any] = {
        "model": backend.name,
        "task": task.name if task else None,
        "shots": args.shots,
        "prompt": built.text,
        "n_tokens": built.n_tokens,
        "context_length": built.context_length,
        "chat": built.chat,
    }
    spec = None
    if mode == "score":
        options = [built.answer_prefix + label for label in task.labels]
        res = backend.score(built.text, options, add_special_tokens=built.add_special_tokens, progress=stderr_progress)
        out.update(mode="score", output=task.labels[res.best], scores=res.to_dict()["options"])
        spec = score_chart(res)
        got = task.labels[res.best]
        correct = None if expected is None else got.strip().lower() == expected.output.strip().lower()
    else:
        settings = GenerationSettings(max_new, args.sample, args.temperature, args.top_k, args.top_p, stop, args.seed,
                                      top_n=args.top_n)
        streamed = not args.json and sys.stdout.isatty()
        if not args.json:
            print(built.text, end="", flush=True)
        res = backend.generate(
            built.text, settings, built.add_special_tokens,
            partial=(lambda d: print(d["delta"], end="", flush=True)) if streamed else None,
        )
        out.update(mode="generate", output=res.text, stop_reason=res.stop_reason, n_new_tokens=len(res.steps),
                   tokens_per_second=res.tokens_per_second,
                   steps=[s.to_dict() for s in res.steps])
        got = res.text
        correct = None if expected is None else is_correct(res.text, expected)
        if res.steps:
            spec = step_chart(res, 0)
    out["expected"] = expected.output if expected is not None else None
    out["correct"] = correct
    if args.json:
        print_json(out)
    else:
        if mode == "generate":
            if not streamed:
                print(got, end="")
            print()
            used = "prompt tokens unknown" if built.n_tokens is None else f"{built.n_tokens} prompt tokens"
            of = f" of {built.context_length}" if built.context_length else ""
            print(f"-- {used}{of}; {out['n_new_tokens']} new "
                  f"({out['stop_reason']}, {out['tokens_per_second']:.1f} tokens/s)", file=sys.stderr)
        else:
            print()
            for o in out["scores"]:
                print(f"  {o['option']!r:<16} log p = {o['logprob']:8.3f}  per token {o['mean_logprob']:8.3f}  "
                      f"p(choice) = {o['choice_prob']:.3f}")
            print(f"prediction: {got}")
        if expected is not None:
            print(f"expected: {expected.output} -> {'correct' if correct else 'wrong'}")
    if args.export:
        if spec is None:
            raise InputError("Nothing was generated, so there is no chart to export.")
        export_chart(spec, args.export)
    return 0


def _model_names(spec: str | None) -> list[str]:
    """'smollm2,gemma3' → ['smollm2', 'gemma3'] (one name when no comma; the default model when empty)."""
    names = [n.strip() for n in (spec or "smollm2").split(",") if n.strip()]
    if not names:
        raise InputError("--model needs at least one model name, e.g. --model smollm2,gemma3.")
    return names


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from explorer.core.prompting.backends import LocalBackend, OpenAIBackend
    from explorer.core.prompting.sweep import parse_shots, run_sweeps, size_chart, sweep_chart, sweeps_to_dict

    shots = parse_shots(args.shots)
    task = _load_task(args)
    names = _model_names(args.model) if not args.endpoint else [args.model or ""]
    if len(set(names)) != len(names):
        raise InputError(f"A model is listed twice in --model: {args.model}.")
    if args.endpoint:
        backends: list[Any] = [OpenAIBackend(args.endpoint, args.model or "", args.api_key_env, args.timeout,
                             idle_timeout=args.idle_timeout)]
    else:
        backends = [LocalBackend(load(name)) for name in names]
    several = len(backends) > 1

    def show(model: str, point: Any) -> None:
        if not args.json:
            who = f"{model:<10} " if several else ""
            print(f"{who}K = {point.shots:<3} accuracy {point.accuracy:6.1%}  95% CI [{point.ci_low:.1%}, "
                  f"{point.ci_high:.1%}]  ({point.correct}/{point.n})", flush=True)

    if not args.json:
        print(f"{task.title} ({task.name}), {', '.join(b.name for b in backends)}, mode {args.mode or task.mode}: "
              f"{task.note}")
    results = run_sweeps(
        backends, task, shots, chat=args.chat, on_point=show, progress=stderr_progress, draws=args.draws,
        limit=args.limit, seed=args.seed, mode=args.mode, normalize=args.normalize, ci=args.ci,
    )
    if args.json:
        print_json(sweeps_to_dict(results, details=args.details))
    if args.export:
        export_chart(sweep_chart(results), args.export)
    if args.export_size:
        export_chart(size_chart(results, args.size_axis), args.export_size)
    return 0
