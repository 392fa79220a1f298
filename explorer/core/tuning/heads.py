"""Running the lecture's task heads on a loaded model: one class out (single text or a pair), a class per
token, copying a span from the input (extractive QA), filling masks, and a general sequence out.

Classification and token labels come from one batched forward (the same code ``evaluate`` runs over a file,
so a row and its file agree); QA and fill-mask are computed here because the app shows what pipelines hide:
the start x end span-score matrix, and every mask filled in one pass (the pipeline handles one mask only,
transformers #3609).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError, ModelError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.loading import require_finite
from explorer.core.models.tokens import MASK_SPELLINGS, show_token
from explorer.core.models.truncate import clip_to_tokens
from explorer.core.tuning.head_results import (
    ClassResult,
    Entity,
    FillMaskResult,
    GenerationResult,
    HeadResult,
    MaskFill,
    QAResult,
    Span,
    TokenLabel,
    TokenResult,
)
from explorer.core.tuning.probe import sentence_reading

TASKS = ("classify", "pair", "tokens", "qa", "fill-mask", "generate")
# Task -> the heads (models.ModelCard.heads) that can run it.
TASK_HEADS = {
    "classify": ("sequence-classification",),
    "pair": ("sequence-classification",),
    "tokens": ("token-classification",),
    "qa": ("question-answering",),
    "fill-mask": ("mlm",),
    "generate": ("causal-lm", "seq2seq-lm"),
}
TASK_TITLES = {
    "classify": "One text in, one class out",
    "pair": "Two texts in, one class out",
    "tokens": "A class per token",
    "qa": "Extractive QA: copy a span of the context",
    "fill-mask": "Fill the masks",
    "generate": "A general sequence out (generation)",
}
# Which inputs the task needs: "text", "pair" (two texts) or "qa" (question + context).
TASK_INPUTS = {"classify": "text", "pair": "pair", "tokens": "text", "qa": "qa", "fill-mask": "text", "generate": "text"}
LABEL_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
O_COLOR = "#bbbbbb"


def tasks_for(heads: list[str]) -> list[str]:
    """The tasks a model with these heads can run, in the lecture's order."""
    return [t for t in TASKS if set(TASK_HEADS[t]) & set(heads)]


def default_task(heads: list[str]) -> str | None:
    runnable = tasks_for(heads)
    return runnable[0] if runnable else None


def require_head(lm: Any, task: str) -> None:
    """Raise a clear ModelError when the model has no head for the task."""
    if task not in TASKS:
        raise InputError(f"Unknown task '{task}'. Choose one of: {', '.join(TASKS)}.")
    if set(TASK_HEADS[task]) & set(lm.heads):
        return
    has = ", ".join(lm.heads) if lm.heads else "no task head (a bare encoder)"
    can = tasks_for(lm.heads)
    hint = f" It can run: {', '.join(can)}." if can else ""
    if task in ("classify", "pair", "tokens") and not set(lm.heads) - {"mlm"}:  # an encoder (+ MLM head) only
        hint += " Fine-tune one in the fine-tune lab (or `lm-explorer finetune`) to give it a head."
    if task == "fill-mask":
        hint += " minilm-mlm (MiniLM with masked-LM pre-training continued by this project) fills masks."
    raise ModelError(f"'{lm.name}' has {has}; the task '{task}' needs a {' or '.join(TASK_HEADS[task])} head.{hint}")


def label_names(config: Any, n: int) -> list[str]:
    """Label names from ``id2label`` (LABEL_0… when the model has none)."""
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(n)]


# ---------------------------------------------------------------- helpers


def _model_max(lm: Any) -> int:
    tok_max = getattr(lm.tokenizer, "model_max_length", None) or 512
    return int(min(lm.max_length, tok_max if tok_max < 100_000 else 512, 512))


def _check_text(text: str, what: str = "text") -> str:
    if text is None or not str(text).strip():
        raise InputError(f"The {what} is empty.")
    return str(text)


# ---------------------------------------------------------------- batched prediction (head and evaluate share it)


def _scores(lm: Any, logits: Any) -> np.ndarray:
    """Probabilities from logits: softmax, or sigmoid for multi-label / one-output heads."""
    import torch

    problem = getattr(lm.config, "problem_type", None) or "single_label_classification"
    if problem == "multi_label_classification" or logits.shape[-1] == 1:
        return torch.sigmoid(logits.float()).numpy()
    return torch.softmax(logits.float(), dim=-1).numpy()


def predict_sentences(
    lm: Any,
    texts: list[str],
    pairs: list[str] | None = None,
    batch_size: int = 32,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Label probabilities for many texts (or sentence pairs) in padded batches: [row, label]."""
    import torch

    limit = _model_max(lm)
    out = []
    n = len(texts)
    for lo in range(0, n, batch_size):
        check(cancel)
        a = texts[lo:lo + batch_size]
        b = pairs[lo:lo + batch_size] if pairs is not None else None
        enc = lm.tokenizer(a, b, truncation=True, max_length=limit, padding=True, return_tensors="pt")
        with lm.lock, torch.no_grad():
            logits = lm.model(**enc).logits  # [batch, label]
        require_finite(logits, lm.name, "label scores")
        out.append(_scores(lm, logits))
        done = min(n, lo + batch_size)
        progress(done / max(1, n), f"Predicted {done:,}/{n:,} rows")
    return np.concatenate(out) if out else np.zeros((0, lm.config.num_labels), dtype=np.float32)


def predict_words(
    lm: Any,
    sentences: list[list[str]],
    batch_size: int = 32,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> list[list[int]]:
    """A label id per word of pre-split sentences, read at each word's first sub-token (as the head was trained);
    -1 for words cut off by truncation."""
    import torch

    limit = _model_max(lm)
    out: list[list[int]] = []
    n = len(sentences)
    for lo in range(0, n, batch_size):
        check(cancel)
        chunk = sentences[lo:lo + batch_size]
        enc = lm.tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=limit, padding=True,
                           return_tensors="pt")
        with lm.lock, torch.no_grad():
            logits = lm.model(**enc).logits  # [batch, token, label]
        require_finite(logits, lm.name, "label scores")
        pred = logits.argmax(-1).tolist()
        for row, words in enumerate(chunk):
            labels = [-1] * len(words)
            prev = None
            for t, w in enumerate(enc.word_ids(row)):
                if w is not None and w != prev:
                    labels[w] = int(pred[row][t])
                prev = w
            out.append(labels)
        done = min(n, lo + batch_size)
        progress(done / max(1, n), f"Predicted {done:,}/{n:,} rows")
    return out


# ---------------------------------------------------------------- sequence classification


def classify(
    lm: Any,
    text: str,
    text_pair: str | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> ClassResult:
    """Class probabilities for one text, or a sentence pair ([CLS] A [SEP] B [SEP]), from one forward pass
    (the same code that evaluates a whole file)."""
    task = "pair" if text_pair is not None else "classify"
    require_head(lm, task)
    text = _check_text(text)
    if text_pair is not None:
        text_pair = _check_text(text_pair, "second text")
    check(cancel)
    progress(0.1, "Classifying…")
    limit = _model_max(lm)
    # Only the start the model reads is tokenized: a dropped 10 MB file took 9 s and 2 GB to use 512 tokens.
    first, cut = clip_to_tokens(lm.tokenizer, text, limit)
    second, cut_pair = clip_to_tokens(lm.tokenizer, text_pair, limit) if text_pair is not None else (None, False)
    n_tokens = len(lm.tokenizer(first, second)["input_ids"])
    problem = getattr(lm.config, "problem_type", None) or "single_label_classification"
    probs = predict_sentences(lm, [first], [second] if second is not None else None, cancel=cancel)[0]
    names = label_names(lm.config, len(probs))
    scores = {name: float(p) for name, p in zip(names, probs, strict=True)}
    best = max(scores, key=lambda k: scores[k])
    progress(1.0, f"{best} ({scores[best]:.0%})")
    return ClassResult(
        task=task, text=text, text_pair=text_pair, label=best, scores=scores, problem_type=problem,
        truncated=cut or cut_pair or n_tokens > limit, model_name=lm.name,
        reads=sentence_reading(lm.model, lm.tokenizer),
    )


# ---------------------------------------------------------------- token classification


def tag_tokens(
    lm: Any,
    text: str,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> TokenResult:
    """A label per token (one forward pass) and the entities its words form: each word takes its first
    piece's label, as the head was trained, and B-/I- runs group into spans (seqeval's rules)."""
    import torch

    from explorer.core.tuning.tags import entity_spans

    require_head(lm, "tokens")
    text = _check_text(text)
    limit = _model_max(lm)
    progress(0.1, "Labelling tokens…")
    start, cut = clip_to_tokens(lm.tokenizer, text, limit)  # offsets into the start are offsets into the text
    enc = lm.tokenizer(start, return_offsets_mapping=True, truncation=True, max_length=limit, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    truncated = cut or len(lm.tokenizer(start)["input_ids"]) > limit
    word_ids = enc.word_ids(0)
    check(cancel)
    with lm.lock, torch.no_grad():
        logits = lm.model(**enc).logits[0]  # [token, label]
    require_finite(logits, lm.name, "label scores")
    probs = torch.softmax(logits.float(), dim=-1).numpy()
    names = label_names(lm.config, probs.shape[-1])
    ids = enc["input_ids"][0].tolist()
    special = set(lm.tokenizer.all_special_ids)
    tokens = []
    words: dict[int, list[int]] = {}  # word -> its token positions
    for i, (tid, (s, e)) in enumerate(zip(ids, offsets, strict=True)):
        if tid in special and e <= s:
            continue
        k = int(probs[i].argmax())
        tokens.append(TokenLabel(lm.tokenizer.convert_ids_to_tokens(tid), int(s), int(e), names[k],
                                 float(probs[i, k]), word_ids[i]))
        if word_ids[i] is not None:
            words.setdefault(word_ids[i], []).append(i)
    order = sorted(words)
    word_tags = [names[int(probs[words[w][0]].argmax())] for w in order]
    entities = []
    for kind, a, b in entity_spans(word_tags):
        first, last = words[order[a]][0], words[order[b]][-1]
        start, end = int(offsets[first][0]), int(offsets[last][1])
        score = float(np.mean([probs[words[order[w]][0]].max() for w in range(a, b + 1)]))
        entities.append(Entity(text=text[start:end], label=kind, start=start, end=end, score=score))
    progress(1.0, f"{len(entities)} entities")
    return TokenResult(text=text, labels=names, tokens=tokens, entities=entities, truncated=truncated,
                       model_name=lm.name)


def label_color(label: str, labels: list[str]) -> str:
    """One colour per entity type (B-/I- of a type share it); 'O' is grey."""
    base = label.split("-", 1)[1] if label[:2] in ("B-", "I-", "E-", "S-") else label
    if base in ("O", ""):
        return O_COLOR
    kinds: list[str] = []
    for lab in labels:
        b = lab.split("-", 1)[1] if lab[:2] in ("B-", "I-", "E-", "S-") else lab
        if b not in ("O", "") and b not in kinds:
            kinds.append(b)
    i = kinds.index(base) if base in kinds else len(kinds)
    return LABEL_COLORS[i % len(LABEL_COLORS)]


# ---------------------------------------------------------------- extractive QA


def answer(
    lm: Any,
    question: str,
    context: str,
    max_answer_len: int = 30,
    top_k: int = 5,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> QAResult:
    """Softmax over start and end logits of the context tokens, span score P(start)·P(end) on the upper
    triangle (end - start < max_answer_len), and the best spans."""
    import torch

    require_head(lm, "qa")
    question = _check_text(question, "question")
    context = _check_text(context, "context")
    if max_answer_len < 1:
        raise InputError("The longest answer must be at least one token.")
    limit = _model_max(lm)
    progress(0.1, "Scoring answer spans…")
    tok = lm.tokenizer
    start, cut = clip_to_tokens(lm.tokenizer, context, limit)  # offsets into the start are offsets into the context
    enc = tok(question, start, truncation="only_second", max_length=limit, return_offsets_mapping=True,
              return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    seq_ids = enc.sequence_ids(0)
    ctx_idx = [i for i, s in enumerate(seq_ids) if s == 1]
    if not ctx_idx:
        raise InputError("The question is so long that no context fits in the model's input. Shorten the question.")
    full_ctx = len(tok(start, add_special_tokens=False)["input_ids"])
    truncated = cut or full_ctx > len(ctx_idx)
    check(cancel)
    with lm.lock, torch.no_grad():
        out = lm.model(**enc)
    require_finite(out.start_logits, lm.name, "answer scores")
    require_finite(out.end_logits, lm.name, "answer scores")
    start_logits = out.start_logits[0, ctx_idx].float()  # [context_token]
    end_logits = out.end_logits[0, ctx_idx].float()  # [context_token]
    ps = torch.softmax(start_logits, dim=-1).numpy()
    pe = torch.softmax(end_logits, dim=-1).numpy()
    n = len(ctx_idx)
    scores = np.outer(ps, pe)  # [start_token, end_token]
    band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), k=max_answer_len)
    scores = np.where(band, scores, 0.0).astype(np.float32)
    ids = enc["input_ids"][0].tolist()
    tokens = tok.convert_ids_to_tokens([ids[i] for i in ctx_idx])
    ctx_offsets = [(int(offsets[i][0]), int(offsets[i][1])) for i in ctx_idx]
    flat = np.argsort(scores, axis=None)[::-1][: max(1, top_k)]
    spans = []
    for f in flat:
        i, j = divmod(int(f), n)
        if scores[i, j] <= 0:
            break
        s, e = ctx_offsets[i][0], ctx_offsets[j][1]
        spans.append(Span(text=context[s:e], start=s, end=e, start_token=i, end_token=j, score=float(scores[i, j])))
    progress(1.0, f"Answer: {spans[0].text!r}" if spans else "No answer")
    return QAResult(
        question=question, context=context, tokens=tokens, offsets=ctx_offsets, start_probs=ps, end_probs=pe,
        span_scores=scores, spans=spans, max_answer_len=max_answer_len, truncated=truncated, model_name=lm.name,
    )


# ---------------------------------------------------------------- fill-mask

def fill_mask(
    lm: Any,
    text: str,
    top_k: int = 5,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> FillMaskResult:
    """Every masked position filled from ONE forward pass (the pipeline handles one mask only)."""
    import torch

    require_head(lm, "fill-mask")
    text = _check_text(text)
    tok = lm.tokenizer
    if tok.mask_token is None:
        raise ModelError(f"The tokenizer of '{lm.name}' has no mask token.")
    text = MASK_SPELLINGS.sub(tok.mask_token, text)
    if tok.mask_token not in text:
        raise InputError(f"Put {tok.mask_token} where a word is missing, e.g. 'Paris is the {tok.mask_token} of France.'")
    limit = _model_max(lm)
    start, cut = clip_to_tokens(lm.tokenizer, text, limit)
    enc = tok(start, truncation=True, max_length=limit, return_tensors="pt")
    truncated = cut or len(tok(start)["input_ids"]) > limit
    ids = enc["input_ids"][0]
    positions = (ids == tok.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        raise InputError("Every mask was cut off by truncation; move the masks nearer the start.")
    check(cancel)
    progress(0.2, f"Filling {len(positions)} mask(s) in one pass…")
    from explorer.core.models.minilm_mlm import mlm_logits

    # its own MLM head, or the one the app attached (the bundled MiniLM)
    logits = mlm_logits(lm, enc["input_ids"], enc.get("attention_mask"))[0]  # [token, vocab]
    require_finite(logits, lm.name, "predictions")
    probs = torch.softmax(logits[positions].float(), dim=-1)  # [mask, vocab]
    top = torch.topk(probs, k=min(top_k, probs.shape[-1]), dim=-1)
    masks = []
    filled_ids = ids.clone()
    for row, pos in enumerate(positions):
        cands = [(show_token(tok.decode([int(t)])), float(p)) for t, p in zip(top.indices[row], top.values[row], strict=True)]
        masks.append(MaskFill(position=int(pos), candidates=cands))
        filled_ids[pos] = top.indices[row, 0]
    filled = tok.decode(filled_ids, skip_special_tokens=True)
    progress(1.0, "Filled")
    return FillMaskResult(text=text, filled=filled, masks=masks, tokens=tok.convert_ids_to_tokens(ids.tolist()),
                          truncated=truncated, model_name=lm.name)


# ---------------------------------------------------------------- generation


def generate(
    lm: Any,
    prompt: str,
    max_new_tokens: int = 40,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[str], None] | None = None,
) -> GenerationResult:
    """Greedy (temperature 0) or seeded sampling; a causal LM continues the prompt, a seq2seq model maps
    the input to a new sequence. ``partial`` gets the text so far after every token."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    require_head(lm, "generate")
    prompt = _check_text(prompt, "prompt")
    if max_new_tokens < 1:
        raise InputError("Generate at least one token.")
    kind = "seq2seq-lm" if "seq2seq-lm" in lm.heads else "causal-lm"
    tok = lm.tokenizer
    limit = _model_max(lm) if kind == "seq2seq-lm" else max(8, _model_max(lm) - max_new_tokens)
    enc = tok(prompt, return_tensors="pt", truncation=True, max_length=limit)
    prompt_len = enc["input_ids"].shape[1]

    class _Watch(StoppingCriteria):
        """Cancel between tokens and report progress / the text so far."""

        def __call__(self, input_ids, scores, **kwargs):  # noqa: ANN001
            check(cancel)
            done = input_ids.shape[1] - (prompt_len if kind == "causal-lm" else 1)
            progress(min(1.0, done / max_new_tokens), f"{done} / {max_new_tokens} tokens")
            if partial is not None:
                new = input_ids[0, prompt_len:] if kind == "causal-lm" else input_ids[0]
                partial(tok.decode(new, skip_special_tokens=True))
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    do_sample = temperature > 0
    kwargs: dict = {"max_new_tokens": max_new_tokens, "do_sample": do_sample,
                    "stopping_criteria": StoppingCriteriaList([_Watch()])}
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p)
        torch.manual_seed(seed)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if pad is not None:
        kwargs["pad_token_id"] = pad
    check(cancel)
    with lm.lock, torch.no_grad():
        out = lm.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], **kwargs)
    new = out[0, prompt_len:] if kind == "causal-lm" else out[0, 1:]  # drop the prompt / decoder start token
    eos = lm.model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
    ids = new.tolist()
    cut = next((i + 1 for i, t in enumerate(ids) if t in eos_ids), len(ids))
    ids = ids[:cut]
    n_new = len(ids)
    stopped = "eos" if ids and ids[-1] in eos_ids else "length"
    text = tok.decode(ids, skip_special_tokens=True)
    progress(1.0, f"Generated {n_new} tokens")
    return GenerationResult(
        prompt=prompt, text=text, kind=kind, new_tokens=n_new,
        settings={"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed},
        stopped=stopped, model_name=lm.name,
    )


# ---------------------------------------------------------------- one entry point


def run_head(
    lm: Any,
    task: str,
    text: str,
    text2: str | None = None,
    *,
    top_k: int = 5,
    max_answer_len: int = 30,
    max_new_tokens: int = 40,
    temperature: float = 0.0,
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
    partial: Callable[[str], None] | None = None,
) -> HeadResult:
    """Run ``task`` (see TASKS); for ``pair`` text2 is the second sentence, for ``qa`` text is the
    question and text2 the context."""
    require_head(lm, task)
    if task == "classify":
        return classify(lm, text, None, progress=progress, cancel=cancel)
    if task == "pair":
        if text2 is None or not str(text2).strip():
            raise InputError("The pair task needs two texts: the first sentence and the second one.")
        return classify(lm, text, text2, progress=progress, cancel=cancel)
    if task == "tokens":
        return tag_tokens(lm, text, progress=progress, cancel=cancel)
    if task == "qa":
        if text2 is None or not str(text2).strip():
            raise InputError("Question answering needs a question and a context to copy the answer from.")
        return answer(lm, text, text2, max_answer_len=max_answer_len, top_k=top_k, progress=progress, cancel=cancel)
    if task == "fill-mask":
        return fill_mask(lm, text, top_k=top_k, progress=progress, cancel=cancel)
    return generate(lm, text, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                    progress=progress, cancel=cancel, partial=partial)


# ---------------------------------------------------------------- charts


def class_chart(result: ClassResult) -> ChartSpec:
    """Bar chart of the label probabilities."""
    names = list(result.scores)
    return ChartSpec(
        title="Class probabilities", x_label="label", y_label="probability",
        series=[Series("probability", list(range(len(names))), [result.scores[n] for n in names], style="bar",
                       color=LABEL_COLORS[0], hover=[f"{n}: {result.scores[n]:.3f}" for n in names])],
        x_ticks=[(float(i), n) for i, n in enumerate(names)], y_range=(0.0, 1.0), legend=False,
        meta={"model": result.model_name, "task": result.task, "text": result.text, "text_pair": result.text_pair},
    )


def token_chart(result: TokenResult) -> ChartSpec:
    """Per-token confidence of the predicted label, one bar per token coloured by its label."""
    series = []
    for label in result.labels:
        idx = [i for i, t in enumerate(result.tokens) if t.label == label]
        if idx:
            series.append(Series(label, [float(i) for i in idx], [result.tokens[i].score for i in idx], style="bar",
                                 color=label_color(label, result.labels),
                                 hover=[f"{show_token(result.tokens[i].token)}: {label} {result.tokens[i].score:.2f}"
                                        for i in idx]))
    return ChartSpec(
        title="Label per token", x_label="token", y_label="probability of the label",
        series=series, x_ticks=[(float(i), show_token(t.token)) for i, t in enumerate(result.tokens)],
        y_range=(0.0, 1.0),
        meta={"model": result.model_name, "text": result.text},
    )


def qa_curves_chart(result: QAResult) -> ChartSpec:
    """P(start) and P(end) over the context tokens."""
    x = [float(i) for i in range(len(result.tokens))]
    return ChartSpec(
        title="Answer start and end probabilities", x_label="context token", y_label="probability",
        series=[
            Series("P(start)", x, [float(p) for p in result.start_probs], color="#2ca02c", hover=result.tokens),
            Series("P(end)", x, [float(p) for p in result.end_probs], color="#d62728", hover=result.tokens),
        ],
        x_ticks=[(float(i), show_token(t)) for i, t in enumerate(result.tokens)],
        meta={"model": result.model_name, "question": result.question, "context": result.context,
              "answer": result.answer},
    )


def qa_span_chart(result: QAResult) -> ChartSpec:
    """Span scores P(start)·P(end): rows are start tokens, columns end tokens (upper triangle)."""
    m = result.span_scores
    return ChartSpec(
        title="Span scores (start × end)", kind="heatmap", x_label="end token", y_label="start token",
        matrix=m, row_labels=list(result.tokens), col_labels=list(result.tokens),
        value_range=(0.0, float(max(m.max(), 1e-9)) if m.size else 1.0), colormap="viridis", legend=False,
        meta={"model": result.model_name, "question": result.question, "max_answer_len": result.max_answer_len,
              "best_spans": [(s.start_token, s.end_token, s.text, s.score) for s in result.spans]},
    )


def fill_mask_chart(result: FillMaskResult, index: int = 0) -> ChartSpec:
    """Candidate probabilities at one masked position."""
    m = result.masks[index]
    names = [t for t, _ in m.candidates]
    return ChartSpec(
        title=f"Mask {index + 1}: candidates", x_label="token", y_label="probability",
        series=[Series("probability", list(range(len(names))), [p for _, p in m.candidates], style="bar",
                       color=LABEL_COLORS[4], hover=names)],
        x_ticks=[(float(i), n) for i, n in enumerate(names)], legend=False,
        meta={"model": result.model_name, "text": result.text, "position": m.position},
    )


def result_charts(result: HeadResult) -> list[ChartSpec]:
    """Every chart a result has (the CLI's --export writes the first)."""
    if isinstance(result, ClassResult):
        return [class_chart(result)]
    if isinstance(result, TokenResult):
        return [token_chart(result)]
    if isinstance(result, QAResult):
        return [qa_curves_chart(result), qa_span_chart(result)]
    if isinstance(result, FillMaskResult):
        return [fill_mask_chart(result, i) for i in range(len(result.masks))]
    return []
