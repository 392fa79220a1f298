"""Independent reference for ``lm-explorer shrink`` (issue #27 part 3), in bare torch, transformers and
scikit-learn: nothing here imports the app's measuring code.

- int8: the same ``quantize_dynamic`` call, measured another way: bytes from ``torch.save`` of the whole module
  (not the state dict) and from parameters + buffers; cosine of mean-pooled vectors written out by hand;
  a decoder's perplexity from transformers' own ``labels=`` loss.
- pruning: heads removed by zeroing their query/key/value rows and output-projection columns in place (not by
  cutting layers), the classifier a scikit-learn ``LogisticRegression()`` on the mean-pooled vectors (not the
  app's L-BFGS).

Only the data split is taken from the app (``load_task_data``), so both read the same rows.

    python tests/reference/shrink_reference.py quantize FOLDER SENTENCES.txt [eager]
    python tests/reference/shrink_reference.py decoder FOLDER TEXT.txt [eager]
    python tests/reference/shrink_reference.py prune FOLDER PRUNE.json   # PRUNE.json: `shrink prune --json`
"""

from __future__ import annotations

import copy
import io
import json
import math
import sys
import time

import torch
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer


def _qint8(model, skip=None):
    names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not skip}
    spec = {n: torch.ao.quantization.default_dynamic_qconfig for n in names}
    return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8)


def _saved_bytes(model) -> int:
    buf = io.BytesIO()
    torch.save(model, buf)  # the whole module, pickled
    return buf.getbuffer().nbytes


def _mean_pool(model, tok, sentence):
    b = tok(sentence, return_tensors="pt", truncation=True, max_length=128)
    h = model(**b).last_hidden_state[0]  # [token, hidden]
    return h.mean(0)  # one sentence, no padding: the plain mean


def quantize(folder: str, sentences: list[str], attention: str | None = None) -> dict:
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, attn_implementation=attention).eval()
    q = _qint8(model)
    out = {"param_and_buffer_bytes_float32": sum(t.numel() * t.element_size()
                                                 for t in list(model.parameters()) + list(model.buffers())),
           "pickled_module_bytes_float32": _saved_bytes(model), "pickled_module_bytes_int8": _saved_bytes(q)}
    cos, secs = [], {"float32": 0.0, "int8": 0.0}
    with torch.inference_mode():
        for s in sentences:
            vecs = []
            for key, m in (("float32", model), ("int8", q)):
                t0 = time.perf_counter()
                vecs.append(_mean_pool(m, tok, s))
                secs[key] += time.perf_counter() - t0
            a, b = vecs
            cos.append(float(a @ b / (a.norm() * b.norm())))
    out.update(cosine_mean=sum(cos) / len(cos), cosine_min=min(cos),
               seconds_per_input={k: v / len(sentences) for k, v in secs.items()})
    return out


def decoder(folder: str, text: str, window: int = 128, attention: str | None = None) -> dict:
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=attention).eval()
    q = _qint8(model, skip=model.get_output_embeddings())
    ids = tok(text, add_special_tokens=False)["input_ids"]
    bos = [tok.bos_token_id] if tok.bos_token_id is not None else []
    step = window - len(bos)
    nll = {"float32": 0.0, "int8": 0.0}
    agree = total = 0
    with torch.inference_mode():
        for i in range(0, len(ids), step):
            piece = ids[i:i + step]
            if len(piece) < 2 and not bos:
                continue
            x = torch.tensor([bos + piece])
            if x.shape[1] < 2:
                continue
            n = x.shape[1] - 1
            fo, qo = model(input_ids=x, labels=x), q(input_ids=x, labels=x)
            nll["float32"] += float(fo.loss) * n
            nll["int8"] += float(qo.loss) * n
            agree += int((fo.logits[0, :-1].argmax(-1) == qo.logits[0, :-1].argmax(-1)).sum())
            total += n
    return {"positions": total, "next_token_top1_agreement": agree / total,
            "perplexity_float32": math.exp(nll["float32"] / total), "perplexity_int8": math.exp(nll["int8"] / total)}


def _zero_heads(model, heads) -> None:
    size = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for layer, head in heads:
            attn = model.encoder.layer[layer].attention
            rows = slice(head * size, (head + 1) * size)
            for lin in (attn.self.query, attn.self.key, attn.self.value):
                lin.weight[rows] = 0
                lin.bias[rows] = 0
            attn.output.dense.weight[:, rows] = 0


def _features(model, tok, texts):
    with torch.inference_mode():
        return torch.stack([_mean_pool(model, tok, t) for t in texts]).double().numpy()


def prune(folder: str, result: dict) -> dict:
    from sklearn.linear_model import LogisticRegression

    from explorer.core.io.bundled_data import resolve_data  # the split only
    from explorer.core.tuning.datasets import load_task_data

    data = load_task_data(resolve_data(result["data"]), seed=0)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    ytr = [ex.label for ex in data.train]
    yva = [ex.label for ex in data.val]
    clf = LogisticRegression(max_iter=10_000).fit(_features(model, tok, [ex.text for ex in data.train]), ytr)
    accs: dict[str, dict[int, float]] = {"order": {}, "random_order": {}, "reverse_order": {}}
    for key in accs:
        for step in result["steps"]:
            m = copy.deepcopy(model)
            _zero_heads(m, [tuple(h) for h in result[key][:step["removed"]]])
            pred = clf.predict(_features(m, tok, [ex.text for ex in data.val]))
            accs[key][step["removed"]] = float((pred == yva).mean())
    return {"accuracy": accs["order"], "random_accuracy": accs["random_order"],
            "reverse_accuracy": accs["reverse_order"]}


if __name__ == "__main__":
    what, folder, arg = sys.argv[1:4]
    attention = sys.argv[4] if len(sys.argv) > 4 else None  # e.g. eager, as the app loads models
    if what == "quantize":
        lines = [line for line in open(arg, encoding="utf-8").read().splitlines() if line.strip()]
        print(json.dumps(quantize(folder, lines, attention=attention)))
    elif what == "decoder":
        print(json.dumps(decoder(folder, open(arg, encoding="utf-8").read(), attention=attention)))
    else:
        print(json.dumps(prune(folder, json.load(open(arg, encoding="utf-8")))))
