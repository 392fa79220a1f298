"""The corpus view: every sentence of a few files as one point per layer, projected to 2-D (PCA or UMAP),
with nearest neighbours and clusters."""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explorer.core.inspect.embeddings import PALETTE, find_spans
from explorer.core.io.charts import ChartSpec, Series
from explorer.core.io.errors import InputError
from explorer.core.io.progress import Progress, check, no_progress
from explorer.core.models.loading import require_finite

_SENTENCE = re.compile(r"[^\n]+?(?:[.!?]+(?=\s|$)|[。！？]+|$)", re.MULTILINE)


def split_sentences(text: str) -> list[tuple[int, str]]:
    """Sentences of ``text`` as (start offset, sentence), split at . ! ? 。！？ and line breaks."""
    out = []
    for m in _SENTENCE.finditer(text):
        s = m.group(0)
        stripped = s.strip()
        if stripped:
            out.append((m.start() + (len(s) - len(s.lstrip())), stripped))
    return out


@dataclass
class CorpusPoint:
    """One occurrence of the word in a file: the sentence it is in and where."""

    file: str
    sentence: str
    start: int  # span of the word in the sentence
    end: int


@dataclass
class Corpus:
    """Vectors of every occurrence of ``word`` across files: [occurrence, layer+1, dim]."""

    word: str
    model_name: str
    points: list[CorpusPoint]
    vectors: np.ndarray  # [occurrence, layer+1, dim]
    notes: list[str] = field(default_factory=list)

    @property
    def num_layers(self) -> int:
        return int(self.vectors.shape[1])


def _hidden_batch(loaded: Any, sentences: list[str]) -> tuple[list[np.ndarray], list[list[tuple[int, int]]], list[list[bool]]]:
    """Hidden states of several sentences in one padded forward: per sentence [layer+1, token, dim]."""
    import torch

    tok = loaded.tokenizer
    enc = tok(sentences, padding=True, truncation=True, max_length=min(int(loaded.max_length), 256),
              return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping").tolist()
    special = enc.pop("special_tokens_mask").tolist()
    inputs = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    if loaded.card.kind == "decoder":
        inputs.pop("token_type_ids", None)
    with loaded.lock, torch.inference_mode():
        out = loaded.model(**inputs, output_hidden_states=True)
        hidden = np.stack([h.float().numpy() for h in out.hidden_states], axis=1)  # [sentence, layer+1, token, dim]
    require_finite(hidden, loaded.name, "hidden states")
    mask = enc["attention_mask"].tolist()
    res_h, res_o, res_s = [], [], []
    for b in range(len(sentences)):
        keep = [i for i, m in enumerate(mask[b]) if m]
        res_h.append(hidden[b][:, keep])
        res_o.append([tuple(offsets[b][i]) for i in keep])
        res_s.append([bool(special[b][i]) for i in keep])
    return res_h, res_o, res_s


def collect_corpus(
    loaded: Any,
    files: list[tuple[str, str]],
    word: str,
    max_occurrences: int = 400,
    batch_size: int = 16,
    progress: Progress = no_progress,
    cancel: threading.Event | None = None,
) -> Corpus:
    """Every occurrence of ``word`` in ``files`` ([(name, text)]) with its vector at every layer."""
    if not files:
        raise InputError("Drop some text files first: the corpus view looks for the word in them.")
    found: list[tuple[str, str, list[tuple[int, int]]]] = []
    for name, text in files:
        for _start, sentence in split_sentences(text):
            spans = find_spans(sentence, word)
            if spans:
                found.append((name, sentence, spans))
    if not found:
        raise InputError(f"'{word}' does not occur in the {len(files)} file(s).")
    notes = []
    points: list[CorpusPoint] = []
    vectors: list[np.ndarray] = []
    total = sum(len(s) for _, _, s in found)
    if total > max_occurrences:
        notes.append(f"'{word}' occurs {total} times; the first {max_occurrences} are shown.")
    for b0 in range(0, len(found), batch_size):
        if len(points) >= max_occurrences:
            break
        check(cancel)
        progress(b0 / len(found), f"Embedding sentences {b0 + 1}–{min(b0 + batch_size, len(found))} of {len(found)}…")
        batch = found[b0: b0 + batch_size]
        hs, offs, specs = _hidden_batch(loaded, [s for _, s, _ in batch])
        for (name, sentence, spans), h, off, sp in zip(batch, hs, offs, specs, strict=True):
            for s, e in spans:
                toks = [i for i, (a, b) in enumerate(off) if not sp[i] and b > a and a < e and b > s]
                if not toks or len(points) >= max_occurrences:
                    continue
                points.append(CorpusPoint(name, sentence, s, e))
                vectors.append(h[:, toks, :].mean(axis=1))  # [layer+1, dim]
    progress(1.0, f"{len(points)} occurrences")
    return Corpus(word, loaded.name, points, np.stack(vectors).astype(np.float32), notes)


def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """[n, dim] -> ([n, 2], method used). PCA by SVD of the centred vectors; UMAP when installed and asked."""
    x = vectors.astype(np.float64)
    n = x.shape[0]
    if method == "umap" and umap_available() and n >= 5:
        import umap

        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, n - 1))
        return reducer.fit_transform(x).astype(np.float32), "umap"
    x = x - x.mean(axis=0, keepdims=True)
    if n < 2:
        return np.zeros((n, 2), dtype=np.float32), "pca"
    _u, _s, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    # Fix each component's sign so the same data always gives the same picture.
    signs = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    out = x @ comps.T
    if out.shape[1] < 2:
        out = np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    return out.astype(np.float32), "pca"


def nearest_neighbours(vectors: np.ndarray, index: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` occurrences most cosine-similar to ``index`` (itself excluded): [(index, cosine)]."""
    x = vectors.astype(np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    sims = unit @ unit[index]
    sims[index] = -np.inf
    order = np.argsort(-sims, kind="stable")[: max(0, min(k, len(sims) - 1))]
    return [(int(i), float(sims[i])) for i in order]


def cluster_labels(vectors: np.ndarray, k: int = 2, seed: int = 0) -> np.ndarray:
    """k-means cluster of each occurrence (seeded) -> [n] ints."""
    from sklearn.cluster import KMeans

    k = max(1, min(k, vectors.shape[0]))
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(vectors.astype(np.float64))


def corpus_chart_spec(corpus: Corpus, layer: int = -1, method: str = "pca", color_by: str = "file",
                      clusters: int = 2, seed: int = 0) -> ChartSpec:
    """Scatter of the occurrences at one layer in 2-D; hover shows the sentence. ``meta['index']`` maps
    (series name, point) to the occurrence, for the nearest-neighbour list."""
    n_layers = corpus.num_layers
    if not -n_layers <= layer < n_layers:
        raise InputError(f"Layer {layer} does not exist: layers are 0–{n_layers - 1} (0 = embeddings).")
    layer = layer % n_layers
    vec = corpus.vectors[:, layer, :]  # [occurrence, dim]
    xy, used = project_2d(vec, method, seed)
    if color_by == "cluster":
        groups = [f"cluster {c + 1}" for c in cluster_labels(vec, clusters, seed)]
    else:
        groups = [p.file for p in corpus.points]
    names = list(dict.fromkeys(groups))
    # Identical contexts give identical vectors: their points stack on one spot. Count them, so 28 occurrences
    # drawn as 4 dots say so.
    spot = [(round(float(xy[i, 0]), 6), round(float(xy[i, 1]), 6)) for i in range(len(groups))]
    stacked = {s: spot.count(s) for s in set(spot)}
    series, index = [], {}
    for k, g in enumerate(names):
        members = [i for i, gg in enumerate(groups) if gg == g]
        index[g] = members
        hover = []
        for i in members:
            p = corpus.points[i]
            many = f"{stacked[spot[i]]} identical occurrences on this spot; " if stacked[spot[i]] > 1 else ""
            hover.append(many + f"{p.file}: {p.sentence[:p.start]}[{p.sentence[p.start:p.end]}]{p.sentence[p.end:]}"[:300])
        series.append(Series(g, [float(xy[i, 0]) for i in members], [float(xy[i, 1]) for i in members],
                             style="scatter", color=PALETTE[k % len(PALETTE)], hover=hover))
    n, spots = len(spot), len(stacked)
    shown = f"{n} occurrences" + (f" on {spots} distinct spots (identical contexts stack; hover counts them)"
                                  if spots < n else "")
    return ChartSpec(
        title=f"'{corpus.word}': {shown} across {len({p.file for p in corpus.points})} file(s) · {corpus.model_name}"
              f" · layer {layer} · {used.upper()}",
        x_label=f"{used.upper()} 1", y_label=f"{used.upper()} 2", series=series,
        meta={"model": corpus.model_name, "word": corpus.word, "layer": layer, "method": used,
              "occurrences": n, "distinct_spots": spots,
              "color_by": color_by, "index": index, "notes": corpus.notes},
    )
