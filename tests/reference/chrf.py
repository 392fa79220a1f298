"""Corpus chrF written from its definition (Popović 2015, as sacrebleu ≥ 2 defines the corpus figure): character
n-grams of orders 1–6 with spaces removed, match counts summed over the corpus per order, precision and recall
averaged over the orders both sides have, then F-beta with beta = 2. The reference for explorer's chrF."""

from collections import Counter


def _ngrams(text, n):
    s = "".join(text.split())
    return Counter(s[i:i + n] for i in range(len(s) - n + 1))


def corpus_chrf(hypotheses, references, order=6, beta=2.0):
    totals = [[0, 0, 0] for _ in range(order)]  # per order: hypothesis n-grams, reference n-grams, matches
    for hyp, ref in zip(hypotheses, references, strict=True):
        for n in range(1, order + 1):
            h, r = _ngrams(hyp, n), _ngrams(ref, n)
            totals[n - 1][0] += sum(h.values())
            totals[n - 1][1] += sum(r.values())
            totals[n - 1][2] += sum(min(c, r[g]) for g, c in h.items())
    precisions, recalls = [], []
    for n_hyp, n_ref, n_match in totals:
        if n_hyp and n_ref:
            precisions.append(n_match / n_hyp)
            recalls.append(n_match / n_ref)
    if not precisions:
        return 0.0
    p = sum(precisions) / len(precisions)
    r = sum(recalls) / len(recalls)
    if p + r == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r)
