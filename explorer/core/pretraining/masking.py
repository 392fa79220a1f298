"""BERT-family masking, exact and seeded: random (BERT), whole word (WWM), ERNIE phrase / entity, SpanBERT.

One vectorised sampler draws K maskings at once (numpy, all samples in lock-step), so a single masking and
the statistics over thousands of them come from the same code. Token actions: 0 untouched, 1 → mask token,
2 → random token, 3 → kept unchanged (but still predicted).
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.pretraining.units import units_for
from explorer.core.pretraining.words import TokenizedText

STRATEGIES = ("random", "wwm", "phrase", "entity", "span")
STRATEGY_TITLES = {
    "random": "Random tokens (BERT)",
    "wwm": "Whole words (WWM)",
    "phrase": "Phrases (ERNIE)",
    "entity": "Entities (ERNIE)",
    "span": "Spans (SpanBERT)",
}
ACTION_NAMES = {1: "mask", 2: "random", 3: "keep"}
NONE, MASK, RANDOM, KEEP = 0, 1, 2, 3


@dataclass
class MaskParams:
    """Every number of the masking recipes; the defaults are the papers' (SpanBERT: p = 0.2, at most 10 words)."""

    ratio: float = 0.15
    p_mask: float = 0.8
    p_random: float = 0.1
    geometric_p: float = 0.2
    max_span: int = 10

    @property
    def p_keep(self) -> float:
        return max(0.0, 1.0 - self.p_mask - self.p_random)

    def validate(self) -> None:
        if not 0.0 <= self.ratio <= 1.0:
            raise InputError(f"The mask ratio must be between 0 and 1 (got {self.ratio}).")
        if self.p_mask < 0 or self.p_random < 0 or self.p_mask + self.p_random > 1.0 + 1e-9:
            raise InputError(
                f"The mask / random shares must be ≥ 0 and add up to at most 1 (got {self.p_mask} + {self.p_random})."
            )
        if not 0.0 < self.geometric_p <= 1.0:
            raise InputError(f"The geometric p must be in (0, 1] (got {self.geometric_p}).")
        if not 1 <= self.max_span <= 100:
            raise InputError(f"The longest span must be between 1 and 100 words (got {self.max_span}).")


@dataclass
class SboTarget:
    """SpanBERT's span boundary objective for one (merged) span: each token inside is predicted from the
    two tokens just outside (``left`` = s−1, ``right`` = e) and its position relative to the span start."""

    span: tuple[int, int]
    left: int | None
    right: int | None
    positions: list[int]  # token positions inside the span
    relative: list[int]  # 1, 2, … (position in the span)

    def to_dict(self) -> dict:
        return {"span": list(self.span), "left": self.left, "right": self.right, "positions": self.positions,
                "relative": self.relative}


@dataclass
class Masking:
    """One masked copy of a text: what was chosen, what happened to each chosen token, the model's input."""

    strategy: str
    seed: int
    params: MaskParams
    tt: TokenizedText
    masked: list[int]  # token positions to predict, ascending
    actions: list[str]  # per masked position: "mask" | "random" | "keep"
    input_ids: list[int]  # after corruption; -1 where a mask token is needed but the tokenizer has none
    input_tokens: list[str]
    spans: list[tuple[int, int]]  # token ranges [start, end): merged spans (span) or chosen units (wwm/ERNIE)
    units: list[tuple[int, int]] = field(default_factory=list)  # every unit the strategy chooses from (token ranges)
    sbo: list[SboTarget] = field(default_factory=list)
    budget: int = 0
    note: str = ""

    @property
    def action_of(self) -> dict[int, str]:
        return dict(zip(self.masked, self.actions, strict=True))

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "params": asdict(self.params),
            "tokens": self.tt.tokens,
            "words": self.tt.words,
            "masked": self.masked,
            "actions": self.actions,
            "input_tokens": self.input_tokens,
            "spans": [list(s) for s in self.spans],
            "sbo": [s.to_dict() for s in self.sbo],
            "budget": self.budget,
            "note": self.note,
        }


@dataclass
class MaskStats:
    """What K maskings look like on average, against theory."""

    strategy: str
    samples: int
    seed: int
    n_candidates: int
    budget: int
    mask_ratio_mean: float
    mask_ratio_std: float
    span_length_hist: dict[int, int]  # length in words -> count (SpanBERT: spans as drawn, before merging)
    span_length_mean: float
    merged_span_length_mean: float  # in tokens, after overlapping / touching spans merged
    drawn_length_hist: dict[int, int]  # SpanBERT: ℓ as drawn, before the budget or the text's end cut it
    theory: dict[int, float]  # clipped-geometric P(ℓ), span strategy only
    theory_mean: float
    action_fractions: dict[str, float]
    token_frequency: list[float]  # [seq] share of samples in which each token is masked
    tokens: list[str]
    note: str = ""

    def unit_length_text(self) -> str:
        """The realised span / unit length in words, in words a reader takes in; random-token masking picks
        single tokens, which have no length in words (its mean would read "0.00 words")."""
        if not self.span_length_hist:
            return "units: single tokens (no word spans to measure)"
        name = "span" if self.strategy == "span" else "unit"
        theory = f" (theory {self.theory_mean:.2f}, clipped geometric)" if self.theory else ""
        return f"mean realised {name} length {self.span_length_mean:.2f} words{theory}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["span_length_hist"] = {str(k): v for k, v in self.span_length_hist.items()}
        d["theory"] = {str(k): v for k, v in self.theory.items()}
        d["drawn_length_hist"] = {str(k): v for k, v in self.drawn_length_hist.items()}
        return d


# ---------------------------------------------------------------- theory


def span_length_distribution(p: float = 0.2, max_len: int = 10) -> np.ndarray:
    """P(ℓ) ∝ p(1−p)^(ℓ−1) for ℓ = 1..max_len, renormalised (SpanBERT); index 0 is ℓ = 1."""
    lengths = np.arange(1, max_len + 1)
    w = p * (1.0 - p) ** (lengths - 1)
    return w / w.sum()


def span_length_mean(p: float = 0.2, max_len: int = 10) -> float:
    """Mean of the clipped geometric (≈ 3.79 words at p = 0.2, max 10)."""
    d = span_length_distribution(p, max_len)
    return float((np.arange(1, max_len + 1) * d).sum())


# ---------------------------------------------------------------- the vectorised sampler


@dataclass
class _Draw:
    tokmask: np.ndarray  # [sample, seq] bool
    actions: np.ndarray  # [sample, seq] int8
    span_words: np.ndarray  # [span] length in words of each drawn span / chosen unit (all samples)
    chosen_units: np.ndarray | None  # [sample, unit] bool (wwm / phrase / entity)
    records: list[tuple[np.ndarray, ...]]  # span: (sample, first word, n words taken, length drawn)
    budget: int


def _layout(tt: TokenizedText) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cand = np.array(tt.candidates, dtype=np.int64)  # [cand] token positions
    word_of_cand = np.array([tt.words[i] for i in cand], dtype=np.int64)  # [cand]
    size = np.array([e - s for s, e in tt.word_spans], dtype=np.int64)  # [word] tokens per word
    return cand, word_of_cand, size


def _assign_actions(
    tokmask: np.ndarray, rng: np.random.Generator, params: MaskParams, per_span: bool
) -> np.ndarray:
    """80/10/10 (settable): one uniform per chosen token, or one per maximal run of chosen tokens (SpanBERT)."""
    flat = tokmask.ravel()
    if per_span:
        prev = np.zeros_like(tokmask)
        prev[:, 1:] = tokmask[:, :-1]
        starts = (tokmask & ~prev).ravel()
        u_run = rng.random(int(starts.sum()))  # [run]
        run_id = np.cumsum(starts)[flat] - 1  # [chosen] the run each chosen token belongs to
        u = u_run[run_id]
    else:
        u = rng.random(int(flat.sum()))  # [chosen]
    act = np.where(u < params.p_mask, MASK, np.where(u < params.p_mask + params.p_random, RANDOM, KEEP))
    out = np.zeros(tokmask.size, dtype=np.int8)
    out[flat] = act
    return out.reshape(tokmask.shape)


def _sample_span(
    tt: TokenizedText, k: int, rng: np.random.Generator, params: MaskParams, cancel: threading.Event | None
) -> tuple[np.ndarray, list, int]:
    """SpanBERT: draw ℓ ~ clipped Geometric(p), an anchor position (redrawn if already masked), move it to its
    word start, take ℓ complete words; stop at ceil(ratio·n) tokens without ever splitting a word or exceeding
    the budget (a word that does not fit ends the span)."""
    cand, word_of_cand, size = _layout(tt)
    n_c, n_w = len(cand), len(size)
    budget = math.ceil(params.ratio * n_c - 1e-9)
    lens = np.arange(1, params.max_span + 1)
    probs = span_length_distribution(params.geometric_p, params.max_span)
    cdf = np.cumsum(probs)
    masked_w = np.zeros((k, n_w), dtype=bool)  # [sample, word]
    count = np.zeros(k, dtype=np.int64)
    active = np.arange(k) if budget > 0 else np.arange(0)
    offs = np.arange(params.max_span)
    records: list[tuple[np.ndarray, ...]] = []
    big = np.iinfo(np.int64).max
    max_size = int(size.max()) if n_w else 0
    while active.size:
        check(cancel)
        a = active.size
        span_len = lens[np.minimum(np.searchsorted(cdf, rng.random(a), side="right"), len(lens) - 1)]  # [a]
        anchor = rng.integers(0, n_c, size=a)
        w0 = word_of_cand[anchor]  # the anchor moved back to its word's start
        ok = ~masked_w[active, w0]
        j = w0[:, None] + offs[None, :]  # [a, max_span] word indices the span may cover
        valid = (offs[None, :] < span_len[:, None]) & (j < n_w)
        jc = np.minimum(j, n_w - 1)
        new = np.where(valid, size[jc] * ~masked_w[active[:, None], jc], 0)  # tokens each word would add
        rem = budget - count[active]
        take = valid & (np.cumsum(new, axis=1) <= rem[:, None]) & ok[:, None]
        take = np.cumprod(take, axis=1).astype(bool)
        nw = take.sum(axis=1)
        rows = np.broadcast_to(active[:, None], take.shape)
        masked_w[rows[take], jc[take]] = True
        count[active] += (new * take).sum(axis=1)
        got = nw > 0
        if got.any():
            records.append((active[got], w0[got], nw[got], span_len[got]))
        rem = budget - count[active]
        keep = rem > 0
        # Rows whose remaining budget is below the longest word may have no free word that fits: stop those.
        tight = np.flatnonzero(keep & (rem < max_size))
        if tight.size:
            min_free = np.where(masked_w[active[tight]], big, size[None, :]).min(axis=1)
            keep[tight] = min_free <= rem[tight]
        active = active[keep]
    tokmask = np.zeros((k, tt.n), dtype=bool)
    tokmask[:, cand] = masked_w[:, word_of_cand]
    return tokmask, records, budget


def _sample_units(
    tt: TokenizedText,
    strategy: str,
    units: list[tuple[int, int]],
    k: int,
    rng: np.random.Generator,
    params: MaskParams,
    cancel: threading.Event | None,
) -> tuple[np.ndarray, np.ndarray | None, int]:
    cand, word_of_cand, size = _layout(tt)
    n_c = len(cand)
    tokmask = np.zeros((k, tt.n), dtype=bool)
    if strategy == "random":
        # BERT (create_pretraining_data): exactly round(ratio·n) positions, at least one.
        m = 0 if params.ratio <= 0 else max(1, int(round(params.ratio * n_c)))
        keys = rng.random((k, n_c))  # [sample, cand]
        chosen = np.argpartition(keys, m - 1, axis=1)[:, :m] if 0 < m < n_c else (
            np.broadcast_to(np.arange(n_c), (k, n_c)) if m >= n_c else np.zeros((k, 0), dtype=np.int64))
        rows = np.broadcast_to(np.arange(k)[:, None], chosen.shape)
        tokmask[rows, cand[chosen]] = True
        return tokmask, None, m
    unit_size = np.array([size[a:b].sum() for a, b in units], dtype=np.int64)  # [unit] tokens
    unit_of_word = np.empty(len(size), dtype=np.int64)
    for u, (a, b) in enumerate(units):
        unit_of_word[a:b] = u
    if strategy == "wwm":
        # Google's whole-word recipe: shuffle words, take each that still fits round(ratio·n) tokens.
        m = 0 if params.ratio <= 0 else max(1, int(round(params.ratio * n_c)))
        order = np.argsort(rng.random((k, len(units))), axis=1)  # [sample, unit] a shuffle per sample
        sizes = unit_size[order]
        total = np.zeros(k, dtype=np.int64)
        take = np.zeros_like(order, dtype=bool)
        for col in range(order.shape[1]):
            if col % 64 == 0:
                check(cancel)
                if (total >= m).all():
                    break
            fits = total + sizes[:, col] <= m
            take[:, col] = fits
            total += np.where(fits, sizes[:, col], 0)
        chosen_units = np.zeros((k, len(units)), dtype=bool)
        rows = np.broadcast_to(np.arange(k)[:, None], order.shape)
        chosen_units[rows[take], order[take]] = True
        budget = m
    else:
        # ERNIE: each unit (word / phrase / entity) is chosen as a whole with probability ratio.
        chosen_units = rng.random((k, len(units))) < params.ratio  # [sample, unit]
        budget = int(round(params.ratio * n_c))
    tokmask[:, cand] = chosen_units[:, unit_of_word[word_of_cand]]
    return tokmask, chosen_units, budget


def _draw(
    tt: TokenizedText,
    strategy: str,
    k: int,
    rng: np.random.Generator,
    params: MaskParams,
    units: list[tuple[int, int]],
    cancel: threading.Event | None,
) -> _Draw:
    if strategy == "span":
        tokmask, records, budget = _sample_span(tt, k, rng, params, cancel)
        actions = _assign_actions(tokmask, rng, params, per_span=True)
        span_words = np.concatenate([r[2] for r in records]) if records else np.zeros(0, dtype=np.int64)
        return _Draw(tokmask, actions, span_words, None, records, budget)
    tokmask, chosen_units, budget = _sample_units(tt, strategy, units, k, rng, params, cancel)
    actions = _assign_actions(tokmask, rng, params, per_span=False)
    if chosen_units is not None:
        unit_words = np.array([b - a for a, b in units], dtype=np.int64)
        span_words = np.broadcast_to(unit_words, chosen_units.shape)[chosen_units]
    else:
        span_words = np.zeros(0, dtype=np.int64)
    return _Draw(tokmask, actions, span_words, chosen_units, [], budget)


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise InputError(f"Unknown masking strategy '{strategy}'. Choose one of: {', '.join(STRATEGIES)}.")


def random_token_ids(tokenizer: Any) -> np.ndarray:
    """The ids a '10% random' replacement draws from: the whole vocabulary minus special tokens."""
    specials = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab = len(tokenizer)
    return np.array([i for i in range(vocab) if i not in specials], dtype=np.int64)


def mask_token(tokenizer: Any) -> tuple[int, str]:
    """The tokenizer's mask token, or (-1, "<mask>") for tokenizers without one (GPT-style BPE)."""
    tok = getattr(tokenizer, "mask_token", None)
    if tok:
        return int(tokenizer.mask_token_id), str(tok)
    return -1, "<mask>"


def mask_text(
    tt: TokenizedText,
    tokenizer: Any,
    strategy: str = "random",
    seed: int = 0,
    params: MaskParams | None = None,
) -> Masking:
    """One seeded masking of an already tokenized text (the same seed gives the same masking)."""
    _check_strategy(strategy)
    params = params or MaskParams()
    params.validate()
    units, note = units_for(tt, strategy)
    rng = np.random.default_rng(seed)
    d = _draw(tt, strategy, 1, rng, params, units, None)
    masked = [int(i) for i in np.flatnonzero(d.tokmask[0])]
    actions = [ACTION_NAMES[int(d.actions[0, i])] for i in masked]
    mask_id, mask_str = mask_token(tokenizer)
    pool = random_token_ids(tokenizer)
    replacement = pool[rng.integers(0, len(pool), size=len(masked))] if len(masked) else np.zeros(0, dtype=np.int64)
    input_ids = list(tt.ids)
    input_tokens = list(tt.tokens)
    for i, act, rep in zip(masked, actions, replacement, strict=True):
        if act == "mask":
            input_ids[i], input_tokens[i] = mask_id, mask_str
        elif act == "random":
            input_ids[i] = int(rep)
            input_tokens[i] = tokenizer.convert_ids_to_tokens(int(rep))
    word_ranges = units
    unit_tokens = [(tt.word_spans[a][0], tt.word_spans[b - 1][1]) for a, b in word_ranges]
    runs = _runs(d.tokmask[0])
    if strategy == "span":
        spans = runs
        sbo = [
            SboTarget(
                span=(s, e),
                left=s - 1 if s - 1 >= 0 else None,
                right=e if e < tt.n else None,
                positions=list(range(s, e)),
                relative=list(range(1, e - s + 1)),
            )
            for s, e in runs
        ]
    elif d.chosen_units is not None:
        spans = [unit_tokens[u] for u in np.flatnonzero(d.chosen_units[0])]
        sbo = []
    else:
        spans, sbo = [], []
    if mask_id < 0:
        extra = "This tokenizer has no mask token; '<mask>' stands for one."
        note = f"{note} {extra}".strip()
    if tt.note:
        note = f"{tt.note} {note}".strip()
    return Masking(
        strategy=strategy,
        seed=seed,
        params=params,
        tt=tt,
        masked=masked,
        actions=actions,
        input_ids=input_ids,
        input_tokens=input_tokens,
        spans=spans,
        units=unit_tokens,
        sbo=sbo,
        budget=d.budget,
        note=note,
    )


def _runs(row: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as [start, end) (SpanBERT's merge of overlapping and touching spans)."""
    padded = np.concatenate([[False], row.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def sample_masks(
    tt: TokenizedText,
    strategy: str = "span",
    samples: int = 100,
    seed: int = 0,
    params: MaskParams | None = None,
    cancel: threading.Event | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` maskings at once: (chosen [sample, seq] bool, actions [sample, seq] int8: 0 none, 1 mask,
    2 random, 3 keep)."""
    _check_strategy(strategy)
    params = params or MaskParams()
    params.validate()
    units, _ = units_for(tt, strategy)
    d = _draw(tt, strategy, samples, np.random.default_rng(seed), params, units, cancel)
    return d.tokmask, d.actions


def sample_stats(
    tt: TokenizedText,
    strategy: str = "span",
    samples: int = 1000,
    seed: int = 0,
    params: MaskParams | None = None,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> MaskStats:
    """Draw ``samples`` maskings at once and summarise: realised mask ratio, span / unit lengths in words
    (against the clipped geometric for SpanBERT), 80/10/10 shares, per-token mask frequency."""
    _check_strategy(strategy)
    params = params or MaskParams()
    params.validate()
    if samples < 1:
        raise InputError("The number of samples must be at least 1.")
    units, note = units_for(tt, strategy)
    rng = np.random.default_rng(seed)
    progress(0.0, f"Sampling {samples} maskings…")
    chunk = 2000  # bounds memory ([chunk, seq] arrays) and lets cancel act between chunks
    n_c = len(tt.candidates)
    ratios: list[np.ndarray] = []
    span_words: list[np.ndarray] = []
    drawn: list[np.ndarray] = []
    freq = np.zeros(tt.n)
    act_counts = np.zeros(4)
    merged_total = 0
    merged_runs = 0
    budget = 0
    done = 0
    while done < samples:
        check(cancel)
        k = min(chunk, samples - done)
        d = _draw(tt, strategy, k, rng, params, units, cancel)
        budget = d.budget
        ratios.append(d.tokmask.sum(axis=1) / max(n_c, 1))
        span_words.append(np.asarray(d.span_words))
        drawn.extend(r[3] for r in d.records)
        freq += d.tokmask.sum(axis=0)
        act_counts += np.bincount(d.actions.ravel(), minlength=4)[:4]
        merged_total += int(d.tokmask.sum())
        starts = d.tokmask.copy()
        starts[:, 1:] &= ~d.tokmask[:, :-1]
        merged_runs += int(starts.sum())
        done += k
        progress(done / samples, f"Sampled {done} of {samples}")
    r = np.concatenate(ratios)
    sw = np.concatenate(span_words) if span_words else np.zeros(0)
    hist_counts = np.bincount(sw.astype(np.int64)) if sw.size else np.zeros(1, dtype=np.int64)
    hist = {int(ln): int(c) for ln, c in enumerate(hist_counts) if ln > 0 and c > 0}
    dr = np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)
    drawn_hist = {int(ln): int(c) for ln, c in enumerate(np.bincount(dr)) if ln > 0 and c > 0} if dr.size else {}
    if strategy == "span":
        if budget < 4 * span_length_mean(params.geometric_p, params.max_span):
            note = (f"{note} The budget is only {budget} tokens: it cuts most spans short, so realised spans are "
                    "shorter than drawn ones. A longer text (hundreds of tokens) shows the theory.").strip()
        dist = span_length_distribution(params.geometric_p, params.max_span)
        theory = {i + 1: float(p) for i, p in enumerate(dist)}
        theory_mean = span_length_mean(params.geometric_p, params.max_span)
    else:
        theory, theory_mean = {}, float("nan")
    picked = act_counts[1:].sum()
    fractions = {ACTION_NAMES[a]: float(act_counts[a] / picked) if picked else 0.0 for a in (1, 2, 3)}
    return MaskStats(
        strategy=strategy,
        samples=samples,
        seed=seed,
        n_candidates=n_c,
        budget=budget,
        mask_ratio_mean=float(r.mean()),
        mask_ratio_std=float(r.std()),
        span_length_hist=hist,
        span_length_mean=float(sw.mean()) if sw.size else 0.0,
        merged_span_length_mean=merged_total / merged_runs if merged_runs else 0.0,
        drawn_length_hist=drawn_hist,
        theory=theory,
        theory_mean=theory_mean,
        action_fractions=fractions,
        token_frequency=[float(x) for x in freq / samples],
        tokens=list(tt.pretty),
        note=note,
    )
