"""Pre-training objectives beyond BERT's MLM, each as (input, target, attention-mask matrix), exact and seeded.

BART noising (token mask / delete, text infilling, sentence permutation, document rotation), MASS, XLNet's
permutation LM (content and query stream masks), UniLM's three masks, ELECTRA's replaced-token detection and
GPT's causal LM. For encoder-decoder objectives the matrix is drawn UniLM-style over [encoder ; decoder]
positions: encoder rows see the whole corrupted input, decoder rows see the whole input and the decoder to
their left (cross-attention + causal self-attention).
"""

from __future__ import annotations

import math
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.tokens import show_token
from explorer.core.pretraining.masking import MaskParams, mask_text, mask_token
from explorer.core.pretraining.words import TokenizedText, tokenize_words

OBJECTIVES = (
    "token-mask",
    "token-delete",
    "text-infill",
    "sentence-permute",
    "document-rotate",
    "mass",
    "xlnet",
    "unilm-bidirectional",
    "unilm-left-to-right",
    "unilm-seq2seq",
    "electra",
    "gpt",
)
TITLES = {
    "token-mask": "BART: token masking",
    "token-delete": "BART: token deletion",
    "text-infill": "BART: text infilling",
    "sentence-permute": "BART: sentence permutation",
    "document-rotate": "BART: document rotation",
    "mass": "MASS: masked fragment → decoder",
    "xlnet": "XLNet: permutation language model",
    "unilm-bidirectional": "UniLM: bidirectional LM",
    "unilm-left-to-right": "UniLM: left-to-right LM",
    "unilm-seq2seq": "UniLM: sequence-to-sequence LM",
    "electra": "ELECTRA: replaced token detection",
    "gpt": "GPT: causal language model",
}
DESCRIPTIONS = {
    "token-mask": "Random tokens become a mask; the decoder rewrites the whole original text.",
    "token-delete": "Random tokens are removed (no mask left behind): the model must also find where.",
    "text-infill": "Spans (lengths ~ Poisson(λ)) each become ONE mask; a 0-length span inserts a mask. "
    "The model must also guess how many tokens are missing.",
    "sentence-permute": "Sentences are shuffled; the decoder restores the original order.",
    "document-rotate": "The document is rotated to start at a random token; the model finds the real start.",
    "mass": "One contiguous fragment (~50%) is masked in the encoder; the decoder predicts exactly that fragment.",
    "xlnet": "A random factorisation order: each token sees only tokens earlier in that order (content stream "
    "includes itself, query stream does not). No mask token, yet both sides of context are used.",
    "unilm-bidirectional": "Masked tokens, every position sees every position (BERT-style).",
    "unilm-left-to-right": "Masked tokens, each position sees only itself and its left (GPT-style).",
    "unilm-seq2seq": "Source segment sees itself bidirectionally; target tokens see the source and their left.",
    "electra": "A generator fills 15% of positions; the discriminator labels every token original or replaced.",
    "gpt": "Each position predicts the next token and sees only its left (causal mask).",
}
DEFAULT_RATIO = {"token-mask": 0.15, "token-delete": 0.15, "text-infill": 0.3, "mass": 0.5, "electra": 0.15,
                 "unilm-bidirectional": 0.15, "unilm-left-to-right": 0.15, "unilm-seq2seq": 0.15}
ENC_DEC = {"token-mask", "token-delete", "text-infill", "sentence-permute", "document-rotate", "mass"}
_SENTENCE_END = re.compile(r"[.!?。！？]+[\"'”’)\]]*$")


@dataclass
class ObjectiveParams:
    ratio: float | None = None  # None: the objective's own default (DEFAULT_RATIO)
    poisson_lambda: float = 3.0
    p_mask: float = 0.8
    p_random: float = 0.1
    xlnet_k: int = 6  # XLNet partial prediction: only the last 1/K of the order is predicted

    def ratio_for(self, kind: str) -> float:
        r = DEFAULT_RATIO.get(kind, 0.15) if self.ratio is None else self.ratio
        if not 0.0 <= r <= 1.0:
            raise InputError(f"The ratio must be between 0 and 1 (got {r}).")
        return r


@dataclass
class ObjectiveResult:
    """What the model is given, what it must produce, and who may attend to whom."""

    kind: str
    seed: int
    tt: TokenizedText  # the original text's tokens
    input_tokens: list[str]
    input_actions: list[str | None]  # per input token: mask | random | keep | inserted | permuted | replaced | None
    input_source: list[int | None]  # per input token: the original position it shows (None for inserted masks)
    target_tokens: list[str | None]  # decoder sequence (enc-dec) or per-position target (None: not predicted)
    original_actions: list[str | None]  # per original token: what happened to it (deleted, mask, …)
    attention_mask: np.ndarray  # [query, key] 0/1
    row_labels: list[str]
    col_labels: list[str]
    query_mask: np.ndarray | None = None  # XLNet query stream [query, key]
    order: list[int] | None = None  # XLNet factorisation order (token positions)
    n_encoder: int = 0  # enc-dec: the first n_encoder rows/cols are the encoder, the rest the decoder
    generator: str = ""
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return TITLES[self.kind]

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "kind": self.kind,
            "seed": self.seed,
            "tokens": self.tt.tokens,
            "input_tokens": self.input_tokens,
            "input_actions": self.input_actions,
            "target_tokens": self.target_tokens,
            "original_actions": self.original_actions,
            "attention_mask": self.attention_mask.astype(int).tolist(),
            "row_labels": self.row_labels,
            "col_labels": self.col_labels,
            "n_encoder": self.n_encoder,
            "description": self.description,
            "note": self.note,
        }
        if self.query_mask is not None:
            out["query_mask"] = self.query_mask.astype(int).tolist()
        if self.order is not None:
            out["order"] = self.order
        if self.generator:
            out["generator"] = self.generator
        out.update(self.extra)
        return out


# ---------------------------------------------------------------- masks


def causal_mask(n: int) -> np.ndarray:
    """GPT: position i attends to keys 0..i.  # [query, key]"""
    return np.tril(np.ones((n, n), dtype=np.int8))


def bidirectional_mask(n: int) -> np.ndarray:
    return np.ones((n, n), dtype=np.int8)


def seq2seq_mask(segments: list[int]) -> np.ndarray:
    """UniLM seq2seq: segment-0 rows see segment 0; segment-1 rows see segment 0 and segment 1 up to themselves."""
    seg = np.asarray(segments)
    n = len(seg)
    src = seg == 0
    m = np.zeros((n, n), dtype=np.int8)  # [query, key]
    m[np.ix_(src, src)] = 1
    tgt_rows = np.flatnonzero(~src)
    m[np.ix_(tgt_rows, np.flatnonzero(src))] = 1
    for i in tgt_rows:
        m[i, tgt_rows[tgt_rows <= i]] = 1
    return m


def encoder_decoder_mask(n_enc: int, n_dec: int) -> np.ndarray:
    """[encoder ; decoder] positions: encoder bidirectional over itself, decoder sees all encoder + causal self."""
    m = np.zeros((n_enc + n_dec, n_enc + n_dec), dtype=np.int8)  # [query, key]
    m[:n_enc, :n_enc] = 1
    m[n_enc:, :n_enc] = 1
    m[n_enc:, n_enc:] = causal_mask(n_dec)
    return m


def xlnet_masks(order: list[int], n: int, special: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Content stream: i sees j iff rank(j) ≤ rank(i); query stream: rank(j) < rank(i) (not its own content).
    Special tokens get rank −1: context everyone sees, never predicted."""
    rank = np.full(n, -1, dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    content = (rank[None, :] <= rank[:, None]).astype(np.int8)  # [query, key]
    query = (rank[None, :] < rank[:, None]).astype(np.int8)
    sp = np.asarray(special, dtype=bool)
    query[sp, :] = content[sp, :]  # specials are no prediction targets: no query stream of their own
    return content, query


# ---------------------------------------------------------------- helpers


def _tokenize_for(kind: str, tokenizer: Any, text: str, max_length: int | None) -> TokenizedText:
    if kind == "unilm-seq2seq":
        source, target = split_source_target(text)
        return tokenize_words(tokenizer, source, max_length=max_length, pair=target)
    return tokenize_words(tokenizer, text, max_length=max_length)


def split_source_target(text: str) -> tuple[str, str]:
    """UniLM seq2seq needs two segments: the first sentence is the source, the rest the target
    (a single sentence is cut at its middle word)."""
    text = text.strip()
    m = re.search(r"[.!?。！？]+[\"'”’)\]]*\s*", text)
    if m and m.end() < len(text):
        return text[: m.end()].strip(), text[m.end():].strip()
    words = text.split()
    if len(words) >= 2:
        half = len(words) // 2
        return " ".join(words[:half]), " ".join(words[half:])
    half = max(1, len(text) // 2)
    if half >= len(text):
        raise InputError("UniLM seq2seq needs a text of at least two characters to split into source and target.")
    return text[:half], text[half:]


def _choose(rng: np.random.Generator, cand: list[int], ratio: float) -> list[int]:
    """round(ratio·n) positions (at least one when ratio > 0), sorted."""
    m = 0 if ratio <= 0 else min(len(cand), max(1, int(round(ratio * len(cand)))))
    return sorted(int(cand[i]) for i in rng.choice(len(cand), size=m, replace=False)) if m else []


def _sentences(tt: TokenizedText) -> list[list[int]]:
    """Token positions of each sentence (a sentence ends on a token ending with . ! ? 。！？ or a blank line)."""
    out: list[list[int]] = [[]]
    for i in tt.candidates:
        out[-1].append(i)
        piece = tt.text[tt.offsets[i][0]: tt.offsets[i][1]] if tt.offsets[i][1] > tt.offsets[i][0] else tt.tokens[i]
        if _SENTENCE_END.search(piece.strip()) or "\n\n" in piece:
            out.append([])
    return [s for s in out if s]


def _labels(tokens: list[str]) -> list[str]:
    return [f"{i}:{show_token(t)}" for i, t in enumerate(tokens)]


def _enc_dec(
    kind: str, tt: TokenizedText, seed: int, inp: list[str], acts: list[str | None], src: list[int | None],
    target: list[str], orig_acts: list[str | None], note: str = "", extra: dict | None = None,
) -> ObjectiveResult:
    dec_in = ["<start>"] + target[:-1]  # the decoder reads the target shifted right
    m = encoder_decoder_mask(len(inp), len(dec_in))
    labels = [f"enc {i}:{t}" for i, t in enumerate(inp)] + [f"dec {i}:{t}" for i, t in enumerate(dec_in)]
    return ObjectiveResult(
        kind=kind, seed=seed, tt=tt, input_tokens=inp, input_actions=acts, input_source=src,
        target_tokens=list(target), original_actions=orig_acts, attention_mask=m, row_labels=labels,
        col_labels=labels, n_encoder=len(inp), note=note, extra=extra or {},
    )


# ---------------------------------------------------------------- the objectives


def run_objective(
    kind: str,
    tokenizer: Any,
    text: str,
    seed: int = 0,
    params: ObjectiveParams | None = None,
    generator: Any = None,
    max_length: int | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> ObjectiveResult:
    """Build one objective's training example from ``text``. ``generator`` (a LoadedModel) is used by ELECTRA."""
    if kind not in OBJECTIVES:
        raise InputError(f"Unknown objective '{kind}'. Choose one of: {', '.join(OBJECTIVES)}.")
    params = params or ObjectiveParams()
    tt = _tokenize_for(kind, tokenizer, text, max_length)
    check(cancel)
    rng = np.random.default_rng(seed)
    ratio = params.ratio_for(kind)
    mask_id, mask_str = mask_token(tokenizer)
    n = tt.n
    cand = tt.candidates
    toks = list(tt.tokens)
    orig_none: list[str | None] = [None] * n
    note = tt.note

    if kind == "token-mask":
        chosen = set(_choose(rng, cand, ratio))
        inp = [mask_str if i in chosen else t for i, t in enumerate(toks)]
        acts = ["mask" if i in chosen else None for i in range(n)]
        return _enc_dec(kind, tt, seed, inp, acts, list(range(n)), toks, list(acts), note)

    if kind == "token-delete":
        chosen = set(_choose(rng, cand, ratio))
        keep = [i for i in range(n) if i not in chosen]
        orig = ["deleted" if i in chosen else None for i in range(n)]
        return _enc_dec(kind, tt, seed, [toks[i] for i in keep], [None] * len(keep), keep, toks, orig, note)

    if kind == "text-infill":
        return _text_infill(tt, seed, rng, ratio, params.poisson_lambda, mask_str, note)

    if kind == "sentence-permute":
        sents = _sentences(tt)
        perm = rng.permutation(len(sents))
        order = [i for s in perm for i in sents[s]]
        moved = {i for k, s in enumerate(perm) if s != k for i in sents[s]}
        lead = [i for i in range(n) if tt.special[i] and i < (cand[0] if cand else n)]
        tail = [i for i in range(n) if tt.special[i] and i > (cand[-1] if cand else -1)]
        src = lead + order + tail
        acts = ["permuted" if i in moved else None for i in src]
        orig = ["permuted" if i in moved else None for i in range(n)]
        if len(sents) < 2:
            note = (note + " The text has one sentence: nothing to permute.").strip()
        elif not moved:
            note = (note + " This draw kept the original order; resample.").strip()
        return _enc_dec(kind, tt, seed, [toks[i] for i in src], acts, src, toks, orig, note,
                        {"sentence_order": [int(p) for p in perm]})

    if kind == "document-rotate":
        # fairseq's rolling noise: a random offset 1..n−1 among the non-special tokens; specials stay put.
        k = int(rng.integers(1, len(cand))) if len(cand) > 1 else 0
        rotated = cand[k:] + cand[:k]
        lead = [i for i in range(n) if tt.special[i] and i < cand[0]]
        tail = [i for i in range(n) if tt.special[i] and i > cand[-1]]
        src = lead + rotated + tail
        acts = ["permuted" if k and not tt.special[i] else None for i in src]
        orig = ["permuted" if k and not tt.special[i] else None for i in range(n)]
        if k:
            acts[len(lead)] = "rotated-start"
        return _enc_dec(kind, tt, seed, [toks[i] for i in src], acts, src, toks, orig, note,
                        {"rotation_start": rotated[0] if rotated else None})

    if kind == "mass":
        length = 0 if ratio <= 0 else min(len(cand), max(1, int(round(ratio * len(cand)))))
        start = int(rng.integers(0, len(cand) - length + 1))
        frag = cand[start: start + length]
        fs = set(frag)
        inp = [mask_str if i in fs else t for i, t in enumerate(toks)]
        acts = ["mask" if i in fs else None for i in range(n)]
        return _enc_dec(kind, tt, seed, inp, acts, list(range(n)), [toks[i] for i in frag], list(acts), note,
                        {"fragment": [frag[0], frag[-1] + 1] if frag else []})

    if kind == "xlnet":
        order = [int(i) for i in rng.permutation(cand)]
        content, query = xlnet_masks(order, n, tt.special)
        k = max(1, params.xlnet_k)
        n_pred = max(1, math.ceil(len(order) / k))
        predicted = set(order[-n_pred:])
        target = [toks[i] if i in predicted else None for i in range(n)]
        orig = ["predicted" if i in predicted else None for i in range(n)]
        labels = _labels(toks)
        return ObjectiveResult(
            kind=kind, seed=seed, tt=tt, input_tokens=toks, input_actions=list(orig), input_source=list(range(n)),
            target_tokens=target, original_actions=orig, attention_mask=content, row_labels=labels,
            col_labels=labels, query_mask=query, order=order, note=note,
            extra={"rank": {str(p): r for r, p in enumerate(order)}},
        )

    if kind.startswith("unilm"):
        if kind == "unilm-seq2seq":
            # Only the target segment is masked: the source is given, the target is generated.
            sub = [i for i in cand if tt.segments[i] == 1]
            mp = MaskParams(ratio=ratio, p_mask=params.p_mask, p_random=params.p_random)
            mk = _mask_positions(tt, tokenizer, sub, seed, mp)
            m = seq2seq_mask(tt.segments)
        else:
            mk = _mask_positions(tt, tokenizer, cand, seed,
                                 MaskParams(ratio=ratio, p_mask=params.p_mask, p_random=params.p_random))
            m = bidirectional_mask(n) if kind == "unilm-bidirectional" else causal_mask(n)
        inp, acts = mk
        target = [toks[i] if acts[i] else None for i in range(n)]
        labels = _labels(inp)
        return ObjectiveResult(
            kind=kind, seed=seed, tt=tt, input_tokens=inp, input_actions=acts, input_source=list(range(n)),
            target_tokens=target, original_actions=list(acts), attention_mask=m, row_labels=labels,
            col_labels=labels, note=note, extra={"segments": tt.segments},
        )

    if kind == "electra":
        return _electra(tt, tokenizer, seed, rng, ratio, generator, note, progress, cancel)

    # gpt
    target: list[str | None] = [*toks[1:], None]  # position i predicts token i+1
    labels = _labels(toks)
    return ObjectiveResult(
        kind=kind, seed=seed, tt=tt, input_tokens=toks, input_actions=[None] * n, input_source=list(range(n)),
        target_tokens=target, original_actions=orig_none, attention_mask=causal_mask(n), row_labels=labels,
        col_labels=labels, note=note,
    )


def _mask_positions(
    tt: TokenizedText, tokenizer: Any, positions: list[int], seed: int, params: MaskParams
) -> tuple[list[str], list[str | None]]:
    """BERT 80/10/10 random masking restricted to ``positions``."""
    if not positions:
        return list(tt.tokens), [None] * tt.n
    special = [i not in set(positions) for i in range(tt.n)]
    sub = TokenizedText(
        text=tt.text, ids=tt.ids, tokens=tt.tokens, pretty=tt.pretty, offsets=tt.offsets, special=special,
        words=[None if s else w for s, w in zip(special, tt.words, strict=True)], word_spans=tt.word_spans,
        segments=tt.segments,
    )
    mk = mask_text(sub, tokenizer, "random", seed=seed, params=params)
    acts: list[str | None] = [None] * tt.n
    for i, a in zip(mk.masked, mk.actions, strict=True):
        acts[i] = a
    return mk.input_tokens, acts


def _text_infill(
    tt: TokenizedText, seed: int, rng: np.random.Generator, ratio: float, lam: float, mask_str: str, note: str
) -> ObjectiveResult:
    """BART text infilling over whole words: Poisson(λ) span lengths until ceil(ratio·words) words are
    covered, span starts drawn without replacement; each covered run → one mask, a 0-length span inserts one."""
    n_w = len(tt.word_spans)
    num = math.ceil(ratio * n_w - 1e-9)
    lengths: list[int] = []
    while sum(lengths) < num:
        lengths.append(int(rng.poisson(lam)))
        if len(lengths) > 10 * n_w + 100:
            break
    if lengths and sum(lengths) > num:
        lengths[-1] -= sum(lengths) - num
    lengths = lengths[:n_w]
    starts = rng.choice(n_w, size=len(lengths), replace=False) if lengths else np.zeros(0, dtype=np.int64)
    covered = np.zeros(n_w, dtype=bool)
    inserts: set[int] = set()
    for s, ln in zip(starts, lengths, strict=True):
        if ln == 0:
            inserts.add(int(s))
        else:
            covered[int(s): int(s) + ln] = True
    inserts = {w for w in inserts if not covered[w]}
    word_of = tt.words
    inp: list[str] = []
    acts: list[str | None] = []
    src: list[int | None] = []
    orig: list[str | None] = [None] * tt.n
    spans: list[list[int]] = []
    for i in range(tt.n):
        w = word_of[i]
        first_of_word = w is not None and tt.word_spans[w][0] == i
        if first_of_word and w in inserts:
            inp.append(mask_str)
            acts.append("inserted")
            src.append(None)
            spans.append([i, i])
        if w is not None and covered[w]:
            orig[i] = "mask"
            prev_covered = i > 0 and word_of[i - 1] is not None and covered[word_of[i - 1]]
            if not prev_covered:
                inp.append(mask_str)
                acts.append("mask")
                src.append(i)
                spans.append([i, i + 1])
            else:
                spans[-1][1] = i + 1
            continue
        inp.append(tt.tokens[i])
        acts.append(None)
        src.append(i)
    return _enc_dec("text-infill", tt, seed, inp, acts, src, list(tt.tokens), orig, note,
                    {"spans": spans, "span_lengths_words": lengths})


_UNUSED = re.compile(r"^(\[unused\d+\]|<unused\d+>|<\|reserved_special_token_\d+\|>)$")


def replacement_ids(tokenizer: Any) -> np.ndarray:
    """Ids ELECTRA may put into the text: the vocabulary minus special and unused ([unused…]) tokens."""
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return np.array([i for i, t in enumerate(tokens)
                     if i not in specials and t is not None and not _UNUSED.match(str(t))], dtype=np.int64)


def _same_vocabulary(a: Any, b: Any) -> bool:
    return a is b or (len(a) == len(b) and a.get_vocab() == b.get_vocab())


def pick_generator(tokenizer: Any, candidates: Any) -> tuple[Any, str]:
    """ELECTRA's generator among loaded models sharing ``tokenizer``'s vocabulary: a masked LM first (its own
    head or the one the app attached), then a causal LM; ``(None, "random")`` when neither is loaded."""
    models = [m for m in (candidates if isinstance(candidates, (list, tuple)) else [candidates]) if m is not None]
    usable = [m for m in models if _same_vocabulary(m.tokenizer, tokenizer)]
    for kind in ("mlm", "causal-lm"):
        for m in usable:
            if kind in (getattr(m, "heads", []) or []):
                return m, kind
    return None, "random"


_MARKERS = ("##", "Ġ", "▁")
ELECTRA_TOP_K = 10


# tokenizer -> (its size, tables): dropped with the tokenizer, rebuilt when tokens are added
_PIECE_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def word_piece_tables(tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ids ELECTRA may put at a word's first piece and at a further piece: real words only (letters or digits,
    no punctuation, special or unused token), split by the tokenizer's own marker (WordPiece ``##`` marks a
    further piece; byte-level BPE ``Ġ`` and SentencePiece ``▁`` mark a first piece)."""
    size, tables = _PIECE_TABLES.get(tokenizer, (None, None))
    if size == len(tokenizer):
        return tables
    allowed = replacement_ids(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(allowed.tolist())
    counts = {m: sum(str(t).startswith(m) for t in tokens) for m in _MARKERS}
    marker = max(counts, key=counts.get)
    start, further = [], []
    for i, t in zip(allowed.tolist(), tokens, strict=True):
        t = str(t)
        bare = t[len(marker):] if t.startswith(marker) else t
        if not bare.isalnum():
            continue
        first = not t.startswith("##") if marker == "##" else t.startswith(marker)
        (start if first else further).append(i)
    tables = (np.array(start, dtype=np.int64), np.array(further, dtype=np.int64))
    _PIECE_TABLES[tokenizer] = (len(tokenizer), tables)
    return tables


def _electra_words(tt: TokenizedText, rng: np.random.Generator, ratio: float) -> list[int]:
    """Whole words (letters or digits: never punctuation) chosen until ``ratio`` of the tokens is reached; the
    token positions of the chosen words, sorted."""
    words = [w for w, (s, e) in enumerate(tt.word_spans)
             if e > s and not any(tt.special[s:e]) and any(ch.isalnum() for ch in tt.word_text(w))]
    budget = 0 if ratio <= 0 or not words else max(1, int(round(ratio * len(tt.candidates))))
    chosen: list[int] = []
    for w in rng.permutation(len(words)).tolist():
        if len(chosen) >= budget:
            break
        s, e = tt.word_spans[words[w]]
        chosen.extend(range(s, e))
    return sorted(chosen)


def _electra(
    tt: TokenizedText, tokenizer: Any, seed: int, rng: np.random.Generator, ratio: float, generator: Any,
    note: str, progress: Progress, cancel: threading.Event | None,
) -> ObjectiveResult:
    """ELECTRA: whole words covering 15% of the tokens get generator samples; the discriminator target is
    replaced/original per token (a sample equal to the original counts as original). ``generator``: one loaded
    model or several; a masked LM samples all positions from one pass (its 10 likeliest words at each [MASK]), else a
    causal LM from each left context, else random words. A word's first piece is replaced by a word's first
    piece and a further piece by a further piece, so whole words become whole words; punctuation, special and
    unused tokens are never drawn."""
    positions = _electra_words(tt, rng, ratio)
    gen_model, gen_kind = pick_generator(tokenizer, generator)
    starts, further = word_piece_tables(tokenizer)
    if not len(starts):
        starts = replacement_ids(tokenizer)
    if not len(further):
        further = starts
    first_piece = {s for s, _ in tt.word_spans}
    table = {p: starts if p in first_piece else further for p in positions}
    samples: dict[int, int] = {}
    if positions and gen_model is not None:
        import torch

        from explorer.core.models.minilm_mlm import mlm_logits

        progress(0.2, "Running the generator…")
        gen = torch.Generator().manual_seed(seed)
        ids = torch.tensor([tt.ids])  # [batch, seq]
        if gen_kind == "mlm":
            mid, _ = mask_token(tokenizer)
            ids[0, positions] = mid
            rows = mlm_logits(gen_model, ids)[0][positions]  # [masked, vocab]: all masks in one pass
            how = f"{gen_model.name} (masked LM: all masked positions sampled from one pass)"
        else:
            with gen_model.lock, torch.no_grad():
                logits = gen_model.model(input_ids=ids).logits[0]  # [seq, vocab]: logits[i] predicts i+1
            rows = logits[[max(p - 1, 0) for p in positions]]
            how = f"{gen_model.name} (causal LM: each sample sees only the left context)"
        rows = rows.float()
        keep = torch.zeros(rows.shape, dtype=torch.bool)  # [masked, vocab]: what each position may become
        for r, p in enumerate(positions):
            ok = table[p][table[p] < rows.shape[-1]]
            keep[r, torch.from_numpy(ok)] = True
        rows = rows.masked_fill(~keep, float("-inf"))
        # the generator's ELECTRA_TOP_K likeliest words at each position: a small generator's full distribution
        # too often draws words that do not fit the context at all
        top = torch.topk(rows, min(ELECTRA_TOP_K, rows.shape[-1]), dim=-1)
        rows = torch.full_like(rows, float("-inf")).scatter(-1, top.indices, top.values)
        probs = torch.softmax(rows, dim=-1)  # [masked, vocab]
        drawn = torch.multinomial(probs, 1, generator=gen)[:, 0].tolist()
        samples = dict(zip(positions, drawn, strict=True))
        if gen_kind == "causal-lm" and positions and positions[0] == 0:
            samples[0] = int(starts[rng.integers(0, len(starts))])  # no left context at all: random
        generator_name = how
    else:
        samples = {p: int(table[p][rng.integers(0, len(table[p]))]) for p in positions}
        generator_name = "random words (no masked or causal LM with this vocabulary is loaded)"
    check(cancel)
    n = tt.n
    inp = list(tt.tokens)
    acts: list[str | None] = [None] * n
    target: list[str | None] = [None if tt.special[i] else "original" for i in range(n)]
    for p, tok_id in samples.items():
        if tok_id == tt.ids[p]:
            acts[p] = "keep"  # the generator guessed the original: it counts as original
        else:
            acts[p] = "replaced"
            target[p] = "replaced"
            inp[p] = tokenizer.convert_ids_to_tokens(int(tok_id))
    labels = _labels(inp)
    return ObjectiveResult(
        kind="electra", seed=seed, tt=tt, input_tokens=inp, input_actions=acts, input_source=list(range(n)),
        target_tokens=target, original_actions=list(acts), attention_mask=bidirectional_mask(n), row_labels=labels,
        col_labels=labels, generator=generator_name, note=note,
        extra={"sampled_positions": positions, "generator_kind": gen_kind,
               "generator_model": gen_model.name if gen_model is not None else None},
    )


def attention_chart(res: ObjectiveResult, stream: str = "content") -> Any:
    """The objective's attention-mask matrix as a heatmap (1 = may attend)."""
    from explorer.core.io.charts import ChartSpec

    m = res.query_mask if stream == "query" and res.query_mask is not None else res.attention_mask
    suffix = " (query stream)" if stream == "query" and res.query_mask is not None else (
        " (content stream)" if res.query_mask is not None else "")
    return ChartSpec(
        title=f"Attention mask — {res.title}{suffix}",
        kind="heatmap",
        x_label="key (attended to)",
        y_label="query (attending)",
        matrix=np.asarray(m, dtype=float),
        row_labels=res.row_labels,
        col_labels=res.col_labels,
        value_range=(0.0, 1.0),
        colormap="viridis",
        meta={"objective": res.kind, "seed": res.seed, "n_encoder": res.n_encoder, "order": res.order},
    )
