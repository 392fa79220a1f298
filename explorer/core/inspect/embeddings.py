"""Contextual embeddings from an analysis pass: a word's vector at every layer, the same word in two
contexts compared layer by layer against each layer's anisotropy baseline, token-by-token similarity,
layer mixes, sentence embeddings, and a 2-D map of a word's occurrences across a corpus.
"""

from __future__ import annotations

import itertools
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.inspect.analysis import Analysis, analyse, label_axis
from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
BASELINE_COLOR = "#7f7f7f"

# ---------------------------------------------------------------- occurrences


@dataclass
class Occurrence:
    """One place a word occurs: its character span in its text and the tokens that cover it."""

    word: str
    segment: int  # 0 = the text, 1 = the pair text
    start: int
    end: int
    tokens: list[int]  # token indices into the analysis
    pieces: list[str]  # the raw pieces, e.g. ['ban', '##k'] or ['ç', 'ĭ', 'Ĺ']

    def describe(self) -> str:
        return f"'{self.word}' at characters {self.start}–{self.end} ({' '.join(self.pieces)})"


def _is_cjk(ch: str) -> bool:
    return "CJK" in unicodedata.name(ch, "") or "\u3040" <= ch <= "\u30ff"


def find_spans(text: str, word: str) -> list[tuple[int, int]]:
    """Character spans of ``word`` in ``text``: whole words for alphabetic words (case-insensitive),
    any substring for Chinese/Japanese characters (狗 inside 哈巴狗)."""
    word = word.strip()
    if not word:
        raise InputError("Give the word to look for.")
    if any(_is_cjk(c) for c in word) or not re.fullmatch(r"\w+", word):
        pattern = re.escape(word)
    else:
        pattern = rf"(?<!\w){re.escape(word)}(?!\w)"
    return [(m.start(), m.end()) for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def find_occurrences(analysis: Analysis, word: str, segment: int | None = None) -> list[Occurrence]:
    """Every occurrence of ``word`` in the analysed text(s), mapped to tokens through the offsets."""
    out: list[Occurrence] = []
    texts = [(0, analysis.text)] + ([(1, analysis.pair)] if analysis.pair is not None else [])
    for seg, text in texts:
        if segment is not None and seg != segment:
            continue
        for s, e in find_spans(text, word):
            toks = [
                i for i, (a, b) in enumerate(analysis.offsets)
                if analysis.segment_ids[i] == seg and not analysis.special_mask[i] and b > a and a < e and b > s
            ]
            if toks:  # spans cut off by truncation have no tokens
                out.append(Occurrence(word, seg, s, e, toks, [analysis.tokens[i] for i in toks]))
    return out


def pick_occurrence(analysis: Analysis, word: str, index: int = 0, segment: int | None = None) -> Occurrence:
    """The ``index``-th (0-based) occurrence of ``word``, with a clear message when it is not there."""
    occ = find_occurrences(analysis, word, segment)
    if not occ:
        texts = [analysis.text] + ([analysis.pair] if analysis.pair is not None else [])
        if analysis.truncated and any(find_spans(t, word) for t in texts):
            raise InputError(
                f"'{word}' occurs only beyond the first {len(analysis.tokens)} tokens, the most {analysis.model_name} takes, so the "
                "model never sees it. Move it nearer the start or shorten the text."
            )
        raise InputError(f"'{word}' does not occur in \"{_short(analysis.text)}\".")
    if not 0 <= index < len(occ):
        raise InputError(f"'{word}' occurs {len(occ)} time(s) in \"{_short(analysis.text)}\"; "
                         f"occurrence {index + 1} does not exist.")
    return occ[index]


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# ---------------------------------------------------------------- vectors


def word_vector(analysis: Analysis, occurrence: Occurrence | list[int]) -> np.ndarray:
    """A word's vector at every layer: the mean of its pieces. [layer+1, dim]."""
    idx = occurrence.tokens if isinstance(occurrence, Occurrence) else list(occurrence)
    return analysis.hidden_states[:, idx, :].mean(axis=1)  # [layer+1, dim]


def cosine_per_layer(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Cosine similarity of two [layer+1, dim] stacks, layer by layer -> [layer+1]."""
    u64, v64 = u.astype(np.float64), v.astype(np.float64)
    num = (u64 * v64).sum(-1)
    den = np.linalg.norm(u64, axis=-1) * np.linalg.norm(v64, axis=-1)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def token_pool(
    analyses: list[Analysis], exclude: list[list[int]] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-special token vectors of ``analyses`` with their sentence index and token id.

    ``exclude[k]`` lists token positions of analysis k to leave out (the compared word itself).
    Returns vectors [layer+1, pooled token, dim], sentence [pooled token], token id [pooled token].
    """
    vecs, sent, ids = [], [], []
    for k, h in enumerate(analyses):
        skip = set(exclude[k]) if exclude and k < len(exclude) else set()
        keep = [i for i, sp in enumerate(h.special_mask) if not sp and i not in skip]
        vecs.append(h.hidden_states[:, keep, :])
        sent += [k] * len(keep)
        ids += [int(h.input_ids[i]) for i in keep]
    return np.concatenate(vecs, axis=1).astype(np.float64), np.array(sent), np.array(ids)


def layer_means(analyses: list[Analysis]) -> np.ndarray:
    """Each layer's mean token vector over the pool (every non-special token of ``analyses``) -> [layer+1, dim].

    Subtracting it removes the direction all contextual vectors share (the anisotropy), so the cosine of two
    vectors says how they differ from a typical token rather than that both are tokens.
    """
    vectors, _, _ = token_pool(analyses)
    return vectors.mean(axis=1)


def _baseline_pairs(sent: np.ndarray, ids: np.ndarray, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random pairs (i, j) of pooled tokens from different sentences and of different words (token ids)."""
    i, j = np.triu_indices(len(sent), k=1)
    ok = (sent[i] != sent[j]) & (ids[i] != ids[j])
    i, j = i[ok], j[ok]
    if len(i) == 0:
        raise InputError("Too few tokens to estimate the anisotropy baseline: it needs tokens of at least two "
                         "different sentences.")
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(i), size=min(n_pairs, len(i)), replace=False)
    return i[pick], j[pick]


def anisotropy_baseline(
    analyses: list[Analysis],
    n_pairs: int = 1000,
    seed: int = 0,
    exclude: list[list[int]] | None = None,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """Each layer's mean cosine of random token pairs, as Ethayarajh (2019) defines it -> [layer+1].

    Pairs are drawn (seeded) from tokens of DIFFERENT sentences that are DIFFERENT words (token ids), special
    tokens and the compared word itself (``exclude``) left out: contextual vectors share a common direction,
    so two unrelated tokens already have a high cosine at deep layers; this is the floor against which a
    same-word similarity means something. ``centre`` ([layer+1, dim]) is subtracted first (the centred view).
    """
    vectors, sent, ids = token_pool(analyses, exclude)  # [layer+1, pooled, dim]
    i, j = _baseline_pairs(sent, ids, n_pairs, seed)
    if centre is not None:
        vectors = vectors - centre[:, None, :]
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    return (unit[:, i, :] * unit[:, j, :]).sum(-1).mean(axis=1)  # [layer+1]


def similarity_matrix(hidden: np.ndarray) -> np.ndarray:
    """Token-by-token cosine similarity of one layer's [token, dim] vectors -> [token, token]."""
    h = hidden.astype(np.float64)
    unit = h / np.maximum(np.linalg.norm(h, axis=-1, keepdims=True), 1e-12)
    return (unit @ unit.T).astype(np.float32)


@dataclass
class LayerMix:
    """How to turn the stack of layers into one vector: one layer, mean of the last N, or user weights."""

    mode: str = "layer"  # "layer" | "last_n" | "weights"
    layer: int = -1
    last_n: int = 4
    weights: list[float] | None = None  # one per layer, index 0 = embeddings; normalised to sum 1

    def describe(self) -> str:
        if self.mode == "layer":
            return f"layer {self.layer}"
        if self.mode == "last_n":
            return f"mean of last {self.last_n} layers"
        return "weighted layers"


def layer_mix(stack: np.ndarray, mix: LayerMix) -> np.ndarray:
    """Combine a [layer+1, ...] stack over its first axis as ``mix`` says -> [...]."""
    n = stack.shape[0]
    if mix.mode == "layer":
        if not -n <= mix.layer < n:
            raise InputError(f"Layer {mix.layer} does not exist: layers are 0–{n - 1} (0 = embeddings).")
        return stack[mix.layer]
    if mix.mode == "last_n":
        k = int(np.clip(mix.last_n, 1, n))
        return stack[n - k:].mean(axis=0)
    if mix.mode == "weights":
        w = np.asarray(mix.weights if mix.weights is not None else [], dtype=np.float64)
        if w.shape != (n,):
            raise InputError(f"Give one weight per layer: {n} weights (embeddings + {n - 1} layers), got {w.size}.")
        if w.sum() <= 0 or (w < 0).any():
            raise InputError("Layer weights must be non-negative and not all zero.")
        w = w / w.sum()
        return np.tensordot(w, stack.astype(np.float64), axes=1).astype(np.float32)
    raise InputError(f"Unknown layer mix '{mix.mode}': use layer, last_n or weights.")


def sentence_embedding(analysis: Analysis, pooling: str = "mean", mix: LayerMix | None = None) -> np.ndarray:
    """One vector for the whole text: the CLS (first) token, the last token (decoders), or the mean of
    all tokens (sentence-transformers' mean pooling) of the mixed layers -> [dim]."""
    hidden = layer_mix(analysis.hidden_states, mix or LayerMix())  # [token, dim]
    if pooling == "cls":
        return hidden[0]
    if pooling == "last":
        return hidden[-1]
    if pooling == "mean":
        return hidden.mean(axis=0)
    raise InputError(f"Unknown pooling '{pooling}': use cls, mean or last.")


# ---------------------------------------------------------------- one word, two contexts


@dataclass
class Context:
    """A sentence and the word (and which of its occurrences, 0-based) to compare."""

    text: str
    word: str
    occurrence: int = 0
    sense: str = ""  # a label; two contexts with the same label are a same-sense pair


VIEWS = {
    "raw": "raw cosine",
    "centred": "cosine after subtracting each layer's mean token vector",
    "minus-baseline": "cosine minus the layer's baseline",
}


@dataclass
class PairSimilarity:
    name: str
    a: int  # context indices
    b: int
    layers: list[float]  # cosine per layer, index 0 = embeddings
    centred: list[float] = field(default_factory=list)  # cosine after subtracting each layer's mean token vector
    relation: str = ""  # "same" | "different" sense, "" when a context has no sense label

    def values(self, view: str, baseline: list[float]) -> list[float]:
        """This pair's curve in one of the VIEWS."""
        if view == "centred":
            return self.centred
        if view == "minus-baseline":
            return [c - b for c, b in zip(self.layers, baseline, strict=True)]
        return self.layers


@dataclass
class SimilarityResult:
    """Same word in several contexts: per-layer cosine of each pair of contexts, and the baseline."""

    model_name: str
    contexts: list[Context]
    occurrences: list[Occurrence]
    pairs: list[PairSimilarity]
    baseline: list[float]
    analyses: list[Analysis] = field(repr=False, default_factory=list)
    notes: list[str] = field(default_factory=list)
    mixed: dict[str, dict[str, float]] = field(default_factory=dict)  # view -> pair name -> cosine under the mix
    mix: LayerMix = field(default_factory=LayerMix)
    baseline_centred: list[float] = field(default_factory=list)  # the same random pairs, mean-centred
    pool_sentences: int = 0

    def baseline_for(self, view: str) -> list[float]:
        """The floor drawn in ``view``: Ethayarajh's baseline (raw or centred), or 0 after subtracting it."""
        if view == "centred":
            return self.baseline_centred
        if view == "minus-baseline":
            return [0.0] * len(self.baseline)
        return self.baseline

    def sense_means(self, view: str = "raw") -> dict[str, list[float]]:
        """Mean curve of the same-sense pairs and of the different-sense pairs (those that exist)."""
        out = {}
        for rel in ("same", "different"):
            curves = [p.values(view, self.baseline) for p in self.pairs if p.relation == rel]
            if curves:
                out[rel] = [float(x) for x in np.mean(curves, axis=0)]
        return out

    def best_layer(self, view: str = "raw") -> int | None:
        """The contextual layer (1 onwards) where same-sense pairs lead different-sense pairs most."""
        m = self.sense_means(view)
        if "same" not in m or "different" not in m or len(m["same"]) < 2:
            return None
        gap = np.array(m["same"][1:]) - np.array(m["different"][1:])
        return int(np.argmax(gap)) + 1

    def summary(self, view: str) -> dict:
        """Same/different-sense means per layer, the baseline and the best layer in one view."""
        m = self.sense_means(view)
        best = self.best_layer(view)
        out: dict[str, Any] = {"baseline": self.baseline_for(view), "best_layer": best,
                               "same_sense": m.get("same"), "different_sense": m.get("different")}
        if best is not None:
            out["at_best_layer"] = {"same_sense": m["same"][best], "different_sense": m["different"][best]}
        return out

    def to_dict(self) -> dict:
        first = self.pairs[0] if self.pairs else None
        return {
            "model": self.model_name,
            "layers": first.layers if first else [],
            "baseline": self.baseline,
            "baseline_centred": self.baseline_centred,
            "baseline_definition": "mean cosine of seeded random token pairs from different sentences and "
                                   "different words, the compared word and special tokens left out "
                                   "(Ethayarajh 2019)",
            "pool_sentences": self.pool_sentences,
            "pairs": [{"name": p.name, "a": p.a, "b": p.b, "relation": p.relation, "layers": p.layers,
                       "centred": p.centred,
                       "minus_baseline": p.values("minus-baseline", self.baseline)} for p in self.pairs],
            "views": {v: self.summary(v) for v in VIEWS},
            "occurrences": [
                {"text": c.text, "word": c.word, "occurrence": c.occurrence, "sense": c.sense, "start": o.start,
                 "end": o.end, "pieces": o.pieces}
                for c, o in zip(self.contexts, self.occurrences, strict=True)
            ],
            "mix": self.mix.describe(),
            "mixed": self.mixed,
            "notes": self.notes,
        }


def compare_contexts(
    loaded: Any,
    contexts: list[Context],
    reference: list[str] | None = None,
    mix: LayerMix | None = None,
    n_pairs: int = 1000,
    seed: int = 0,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> SimilarityResult:
    """Analyse each context, pick its word occurrence, and compare every pair layer by layer: raw cosine, and
    cosine after subtracting each layer's mean token vector over the pool (contexts + ``reference`` texts).

    The baseline pools the tokens of the contexts and of ``reference`` texts (more tokens, steadier floor),
    pairing only different sentences and different words (Ethayarajh 2019), the compared word left out.
    """
    if len(contexts) < 2:
        raise InputError("Give at least two sentences to compare.")
    analyses: list[Analysis] = []
    occs: list[Occurrence] = []
    notes: list[str] = []
    texts = [c.text for c in contexts] + list(reference or [])
    unk = getattr(loaded.tokenizer, "unk_token", None)
    for k, text in enumerate(texts):
        check(cancel)
        progress(k / (len(texts) + 1), f"Analysing sentence {k + 1} of {len(texts)}…")
        a = analyse(loaded, text)
        analyses.append(a)
        if a.note:
            notes.append(a.note)
        if k < len(contexts):
            c = contexts[k]
            occ = pick_occurrence(a, c.word, c.occurrence)
            occs.append(occ)
            if unk is not None and all(p == unk for p in occ.pieces) and not any(c.word in n for n in notes):
                notes.append(f"'{c.word}' is {unk} for {loaded.name}: its vocabulary lacks it, so this compares "
                             f"unknown-token placeholders. Try a model whose vocabulary has it.")
    vectors = [word_vector(a, o) for a, o in zip(analyses, occs, strict=False)]  # each [layer+1, dim]
    centre = layer_means(analyses)  # [layer+1, dim]
    pairs = []
    mix = mix or LayerMix()
    for i, j in itertools.combinations(range(len(contexts)), 2):
        name = f"{i + 1}·{j + 1}: {_short(contexts[i].text, 18)} / {_short(contexts[j].text, 18)}"
        si, sj = contexts[i].sense.strip(), contexts[j].sense.strip()
        relation = ("same" if si == sj else "different") if si and sj else ""
        pairs.append(PairSimilarity(
            name, i, j, [float(x) for x in cosine_per_layer(vectors[i], vectors[j])],
            [float(x) for x in cosine_per_layer(vectors[i] - centre, vectors[j] - centre)], relation))
    exclude = baseline_exclusions(analyses, occs)
    if exclude is None:  # nothing but the compared word (e.g. all [UNK]): keep its tokens rather than fail
        notes.append("Too few other tokens: the baseline includes the compared word's tokens.")
    baseline = anisotropy_baseline(analyses, n_pairs=n_pairs, seed=seed, exclude=exclude)
    baseline_c = anisotropy_baseline(analyses, n_pairs=n_pairs, seed=seed, exclude=exclude, centre=centre)
    progress(1.0, "Done")
    result = SimilarityResult(loaded.name, list(contexts), occs, pairs, [float(x) for x in baseline], analyses,
                              notes, {}, mix, [float(x) for x in baseline_c], len(analyses))
    result.mixed = {view: mixed_similarity(result, mix, view, n_pairs=n_pairs, seed=seed) for view in VIEWS}
    return result


def baseline_exclusions(analyses: list[Analysis], occurrences: list[Occurrence]) -> list[list[int]] | None:
    """Token positions of each analysis left out of the baseline's pool: the compared word's own token ids (it
    would pair the word with itself). None when nothing else would be left (the pool keeps them then)."""
    target_ids = {int(analyses[k].input_ids[t]) for k, o in enumerate(occurrences) for t in o.tokens}
    exclude = [[t for t, i in enumerate(a.input_ids) if int(i) in target_ids] for a in analyses]
    try:
        anisotropy_baseline(analyses, n_pairs=1, exclude=exclude)
    except InputError:
        return None
    return exclude


def mixed_similarity(result: SimilarityResult, mix: LayerMix, view: str = "raw", n_pairs: int = 1000,
                     seed: int = 0) -> dict[str, float]:
    """Each pair's cosine under the layer ``mix`` (pair name -> value), in one of the VIEWS as the chart draws
    them: raw; mean-centred (each layer's mean token vector subtracted, then mixed); or raw minus the baseline
    of the same random token pairs under the same mix."""
    if view not in VIEWS:
        raise InputError(f"Unknown view '{view}': use {', '.join(VIEWS)}.")
    analyses = result.analyses
    vectors = [word_vector(a, o) for a, o in zip(analyses, result.occurrences, strict=False)]  # [layer+1, dim]
    centre = layer_means(analyses) if view == "centred" else None  # [layer+1, dim]
    floor = 0.0
    if view == "minus-baseline":
        pooled, sent, ids = token_pool(analyses, baseline_exclusions(analyses, result.occurrences))
        i, j = _baseline_pairs(sent, ids, n_pairs, seed)
        mixed = layer_mix(pooled, mix)  # [pooled, dim]
        unit = mixed / np.maximum(np.linalg.norm(mixed, axis=-1, keepdims=True), 1e-12)
        floor = float((unit[i] * unit[j]).sum(-1).mean())
    out = {}
    for p in result.pairs:
        u, v = vectors[p.a], vectors[p.b]
        if centre is not None:
            u, v = u - centre, v - centre
        cos = float(cosine_per_layer(layer_mix(u, mix)[None], layer_mix(v, mix)[None])[0])
        out[p.name] = cos - floor
    return out


SAME_COLOR, DIFF_COLOR = "#2ca02c", "#d62728"
SAME_LIGHT, DIFF_LIGHT = "#98df8a", "#ff9896"


def similarity_chart_spec(result: SimilarityResult, view: str = "raw") -> ChartSpec:
    """Line chart of cosine per layer in one of the VIEWS, the (Ethayarajh) baseline dashed.

    With sense labels: every pair thin (green = same sense, red = different sense) and the two means thick,
    so same-sense and different-sense pairs read separately; without labels, one coloured line per pair.
    """
    if view not in VIEWS:
        raise InputError(f"Unknown view '{view}': use {', '.join(VIEWS)}.")
    b = result.baseline_for(view)
    n = len(b)
    x = list(range(n))
    series = []
    means = result.sense_means(view)
    both = {"same", "different"} <= set(means)
    for k, p in enumerate(result.pairs):
        y = p.values(view, result.baseline)
        thin = both and bool(p.relation)  # named in the legend by its thick mean line, in the hover by itself
        if thin:
            color, width = (SAME_LIGHT if p.relation == "same" else DIFF_LIGHT), 1.0
            label = f"{p.relation} sense {p.a + 1}·{p.b + 1}"  # the full sentences are in the hover
        else:
            color, width, label = PALETTE[k % len(PALETTE)], 2.0, p.name
        series.append(Series(label, x, y, color=color, width=width, in_legend=not thin,
                             hover=[f"{p.name}\nlayer {i}: {v:.3f}" for i, v in enumerate(y)]))
    for rel, color in (("same", SAME_COLOR), ("different", DIFF_COLOR)):
        if both:
            count = sum(p.relation == rel for p in result.pairs)
            series.append(Series(f"{rel} sense: mean of {count} pair{'s' if count != 1 else ''}", x, means[rel], color=color, width=3.5,
                                 hover=[f"{rel}-sense mean, layer {i}: {v:.3f}" for i, v in enumerate(means[rel])]))
    base_name = {"raw": "baseline: random token pairs", "centred": "baseline: random token pairs (centred)",
                 "minus-baseline": "baseline (0 after subtracting it)"}[view]
    series.append(Series(base_name, x, b, color=BASELINE_COLOR, dashed=True,
                         hover=[f"baseline layer {i}: {v:.3f}" for i, v in enumerate(b)]))
    words = sorted({c.word for c in result.contexts})
    y_label = {"raw": "cosine similarity", "centred": "cosine after subtracting the layer mean",
               "minus-baseline": "cosine minus baseline"}[view]
    best = result.best_layer(view)
    return ChartSpec(
        title=f"'{'/'.join(words)}' in different contexts · {result.model_name} · {VIEWS[view]}",
        x_label="layer (0 = embeddings)", y_label=y_label, series=series,
        x_ticks=[(i, str(i)) for i in range(n)] if n <= 40 else None,
        meta={"model": result.model_name, "contexts": [c.__dict__ for c in result.contexts], "view": view,
              "best_layer": best, "notes": result.notes,
              "baseline": "mean cosine of seeded random token pairs from different sentences and different "
                          "words, the compared word left out (Ethayarajh 2019)",
              "centring": "each layer's mean token vector over the pool of "
                          f"{result.pool_sentences} sentences (contexts + reference)"},
    )


def token_similarity_spec(analysis: Analysis, layer: int = -1, hide_special: bool = True,
                          mix: LayerMix | None = None) -> ChartSpec:
    """Heatmap of token-by-token cosine similarity at one layer (or under a layer mix)."""
    n_layers = analysis.hidden_states.shape[0]
    if mix is None:
        if not -n_layers <= layer < n_layers:
            raise InputError(f"Layer {layer} does not exist: layers are 0–{n_layers - 1} (0 = embeddings).")
        mix = LayerMix("layer", layer=layer)
    keep = [i for i, sp in enumerate(analysis.special_mask) if not (hide_special and sp)]
    hidden = layer_mix(analysis.hidden_states, mix)  # [token, dim]
    m = similarity_matrix(hidden[keep])  # [token, token]
    labels = [analysis.labels[i] for i in keep]
    where = f"layer {mix.layer % n_layers}" if mix.mode == "layer" else mix.describe()
    return ChartSpec(
        title=f"Token similarity · {analysis.model_name} · {where}", kind="heatmap",
        x_label=label_axis("token", labels), y_label=label_axis("token", labels), matrix=m, row_labels=labels,
        col_labels=labels,
        value_range=(float(min(0.0, m.min())), 1.0), colormap="viridis", legend=False,
        meta={"model": analysis.model_name, "mix": mix.__dict__, "text": analysis.text, "tokens": keep},
    )


# ---------------------------------------------------------------- presets


def load_presets() -> dict:
    """The shipped "one word, several contexts" presets (resources/presets/embeddings.json)."""
    import json

    from explorer.core.io.paths import resources_dir

    path = resources_dir() / "presets" / "embeddings.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"presets": [], "reference": []}


def preset_model(preset: dict, available: list[str] | set[str]) -> str | None:
    """The model a preset runs on: its ``model`` when installed, else its ``fallback_model`` (the Chinese
    presets want gemma3, whose vocabulary knows Chinese, and fall back to smollm2)."""
    for name in (preset.get("model"), preset.get("fallback_model")):
        if name and name in available:
            return name
    return None


def load_reference_texts() -> list[str]:
    """Neutral sentences whose tokens join the anisotropy baseline's pool, for a steadier estimate."""
    return list(load_presets().get("reference", []))
