"""Write the bundled extractive-QA set (resources/data/qa.jsonl and qa-test.jsonl), SQuAD-style.

Contexts are short paragraphs the project writes from fact tables below (countries, the lecture's language
models, scientists) plus the project's own sample text; each question's answer is a span of its context,
found by character offset. Several entities of one kind share a paragraph, so the question decides which
fact is the answer. Some paragraphs are long (more than one model window), so a stride is needed. The test
split holds whole paragraphs the training split never sees. Run again to regenerate (seeded, deterministic):

    python scripts/make_qa_data.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "resources" / "data"

# country, capital, continent, language, currency
COUNTRIES = [
    ("France", "Paris", "Europe", "French", "euro"),
    ("Germany", "Berlin", "Europe", "German", "euro"),
    ("Italy", "Rome", "Europe", "Italian", "euro"),
    ("Spain", "Madrid", "Europe", "Spanish", "euro"),
    ("Portugal", "Lisbon", "Europe", "Portuguese", "euro"),
    ("Poland", "Warsaw", "Europe", "Polish", "zloty"),
    ("Sweden", "Stockholm", "Europe", "Swedish", "krona"),
    ("Norway", "Oslo", "Europe", "Norwegian", "krone"),
    ("Hungary", "Budapest", "Europe", "Hungarian", "forint"),
    ("Greece", "Athens", "Europe", "Greek", "euro"),
    ("Japan", "Tokyo", "Asia", "Japanese", "yen"),
    ("China", "Beijing", "Asia", "Mandarin Chinese", "renminbi"),
    ("India", "New Delhi", "Asia", "Hindi", "rupee"),
    ("Thailand", "Bangkok", "Asia", "Thai", "baht"),
    ("Vietnam", "Hanoi", "Asia", "Vietnamese", "dong"),
    ("South Korea", "Seoul", "Asia", "Korean", "won"),
    ("Indonesia", "Jakarta", "Asia", "Indonesian", "rupiah"),
    ("Turkey", "Ankara", "Asia", "Turkish", "lira"),
    ("Egypt", "Cairo", "Africa", "Arabic", "Egyptian pound"),
    ("Kenya", "Nairobi", "Africa", "Swahili", "Kenyan shilling"),
    ("Nigeria", "Abuja", "Africa", "English", "naira"),
    ("Ethiopia", "Addis Ababa", "Africa", "Amharic", "birr"),
    ("Ghana", "Accra", "Africa", "English", "cedi"),
    ("Morocco", "Rabat", "Africa", "Arabic", "dirham"),
    ("Brazil", "Brasilia", "South America", "Portuguese", "real"),
    ("Argentina", "Buenos Aires", "South America", "Spanish", "peso"),
    ("Peru", "Lima", "South America", "Spanish", "sol"),
    ("Chile", "Santiago", "South America", "Spanish", "peso"),
    ("Colombia", "Bogota", "South America", "Spanish", "peso"),
    ("Canada", "Ottawa", "North America", "English and French", "Canadian dollar"),
    ("Mexico", "Mexico City", "North America", "Spanish", "peso"),
    ("Cuba", "Havana", "North America", "Spanish", "Cuban peso"),
    ("Australia", "Canberra", "Oceania", "English", "Australian dollar"),
    ("New Zealand", "Wellington", "Oceania", "English and Maori", "New Zealand dollar"),
    ("Russia", "Moscow", "Europe", "Russian", "ruble"),
    ("Ukraine", "Kyiv", "Europe", "Ukrainian", "hryvnia"),
]

# model, organisation, year, what it is known for (an objective or an idea)
MODELS = [
    ("BERT", "Google", "2018", "masked language modelling and next sentence prediction"),
    ("GPT-2", "OpenAI", "2019", "predicting the next word with 1.5 billion parameters"),
    ("GPT-3", "OpenAI", "2020", "few-shot learning from a prompt with 175 billion parameters"),
    ("RoBERTa", "Facebook AI", "2019", "training BERT longer without next sentence prediction"),
    ("ALBERT", "Google", "2019", "sharing parameters across layers"),
    ("ELECTRA", "Stanford University and Google", "2020", "replaced token detection"),
    ("XLNet", "Carnegie Mellon University and Google", "2019", "permutation language modelling"),
    ("SpanBERT", "Facebook AI", "2019", "masking contiguous spans of words"),
    ("BART", "Facebook AI", "2019", "denoising corrupted documents"),
    ("T5", "Google", "2019", "casting every task as text-to-text"),
    ("DistilBERT", "Hugging Face", "2019", "knowledge distillation from BERT"),
    ("ERNIE", "Baidu", "2019", "masking whole phrases and entities"),
    ("MASS", "Microsoft", "2019", "masked sequence-to-sequence pre-training"),
    ("UniLM", "Microsoft", "2019", "one network with three attention masks"),
    ("MiniLM", "Microsoft", "2020", "distilling the self-attention of a larger model"),
    ("TinyBERT", "Huawei", "2019", "two-stage knowledge distillation"),
]

# person, year of birth, city of birth, what they are known for
PEOPLE = [
    ("Marie Curie", "1867", "Warsaw", "research on radioactivity"),
    ("Albert Einstein", "1879", "Ulm", "the theory of relativity"),
    ("Isaac Newton", "1643", "Woolsthorpe", "the law of universal gravitation"),
    ("Charles Darwin", "1809", "Shrewsbury", "the theory of natural selection"),
    ("Ada Lovelace", "1815", "London", "the first published computer program"),
    ("Alan Turing", "1912", "London", "the Turing machine"),
    ("Nikola Tesla", "1856", "Smiljan", "alternating current motors"),
    ("Galileo Galilei", "1564", "Pisa", "observing the moons of Jupiter"),
    ("Johannes Kepler", "1571", "Weil der Stadt", "the laws of planetary motion"),
    ("Louis Pasteur", "1822", "Dole", "pasteurisation"),
    ("Rosalind Franklin", "1920", "London", "X-ray images of DNA"),
    ("Niels Bohr", "1885", "Copenhagen", "his model of the atom"),
    ("Max Planck", "1858", "Kiel", "founding quantum theory"),
    ("Dmitri Mendeleev", "1834", "Tobolsk", "the periodic table"),
    ("James Clerk Maxwell", "1831", "Edinburgh", "the equations of electromagnetism"),
    ("Claude Shannon", "1916", "Petoskey", "information theory"),
    ("Grace Hopper", "1906", "New York City", "one of the first compilers"),
    ("John von Neumann", "1903", "Budapest", "game theory"),
    ("Srinivasa Ramanujan", "1887", "Erode", "work on number theory"),
    ("Emmy Noether", "1882", "Erlangen", "Noether's theorem"),
    ("Carl Friedrich Gauss", "1777", "Brunswick", "the normal distribution"),
    ("Leonhard Euler", "1707", "Basel", "graph theory"),
    ("Alexander Fleming", "1881", "Darvel", "the discovery of penicillin"),
    ("Edwin Hubble", "1889", "Marshfield", "showing that the universe is expanding"),
    ("Dorothy Hodgkin", "1910", "Cairo", "the structure of vitamin B12"),
    ("Tu Youyou", "1930", "Ningbo", "the discovery of artemisinin"),
    ("Lise Meitner", "1878", "Vienna", "explaining nuclear fission"),
    ("Werner Heisenberg", "1901", "Wurzburg", "the uncertainty principle"),
    ("Enrico Fermi", "1901", "Rome", "the first nuclear reactor"),
    ("Linus Pauling", "1901", "Portland", "the nature of the chemical bond"),
]

COUNTRY_SENTENCES = [
    "{0} is a country in {2}. Its capital is {1}. Most people there speak {3}, and they pay with the {4}.",
    "The capital of {0} is {1}. {0} lies in {2}; its main language is {3} and its currency is the {4}.",
    "In {0}, a country of {2}, the seat of government is {1}. People speak {3} and prices are in the {4}.",
]
COUNTRY_QUESTIONS = [
    ("What is the capital of {0}?", 1),
    ("Which city is the capital of {0}?", 1),
    ("On which continent is {0}?", 2),
    ("What language do most people in {0} speak?", 3),
    ("Which language is spoken in {0}?", 3),
    ("What currency is used in {0}?", 4),
    ("What do people in {0} pay with?", 4),
]
MODEL_SENTENCES = [
    "{0} was introduced by {1} in {2}. It is known for {3}.",
    "In {2}, {1} released {0}, a model known for {3}.",
    "{1} published {0} in {2}; the model is remembered for {3}.",
]
MODEL_QUESTIONS = [
    ("Who introduced {0}?", 1),
    ("Which organisation released {0}?", 1),
    ("In what year was {0} released?", 2),
    ("When was {0} introduced?", 2),
    ("What is {0} known for?", 3),
]
PEOPLE_SENTENCES = [
    "{0} was born in {2} in {1}. {0} is known for {3}.",
    "Born in {1} in {2}, {0} became famous for {3}.",
    "{0}, born in {2} in the year {1}, is remembered for {3}.",
]
PEOPLE_QUESTIONS = [
    ("When was {0} born?", 1),
    ("In what year was {0} born?", 1),
    ("Where was {0} born?", 2),
    ("In which city was {0} born?", 2),
    ("What is {0} known for?", 3),
    ("What is {0} remembered for?", 3),
]

# Questions on the project's own sample text (resources/samples/bert-paragraph.txt), answers checked
# against the text below.
SAMPLE_QUESTIONS = [
    ("How is BERT pre-trained?", "by masking some of the words in a sentence and asking the model to fill them in"),
    ("What is GPT trained to predict?", "the next word"),
    ("Which words does GPT see?", "the words to the left"),
    ("What does each word vector depend on?", "its whole context"),
    ("What is added on top after pre-training?", "a small task-specific layer"),
    ("What did GPT-3 show?", "that a large enough language model can instead be given a task description and a few "
                             "examples in its prompt, and answer without any gradient update"),
]


def _sample_text() -> str:
    path = Path(__file__).resolve().parents[1] / "resources" / "samples" / "bert-paragraph.txt"
    return path.read_text(encoding="utf-8").strip()


def _paragraph(rng: random.Random, rows: list[tuple], sentences: list[str]) -> tuple[str, list[tuple[tuple, int]]]:
    """A paragraph with one sentence per row; returns it and, per row, where the row's sentence starts."""
    parts, starts, pos = [], [], 0
    for row in rows:
        s = rng.choice(sentences).format(*row)
        starts.append(pos)
        parts.append(s)
        pos += len(s) + 1
    return " ".join(parts), list(zip(rows, starts, strict=True))


def _find(context: str, answer: str, after: int) -> int:
    """The answer's offset inside its row's sentence (the first occurrence at or after the sentence start)."""
    at = context.find(answer, after)
    if at < 0:
        raise ValueError(f"{answer!r} not in {context!r}")
    return at


def _records(rng: random.Random, table: list[tuple], sentences: list[str], questions: list[tuple[str, int]],
             kind: str, group: int, per_row: int) -> list[dict]:
    rows = list(table)
    rng.shuffle(rows)
    out = []
    for g in range(0, len(rows), group):
        chunk = rows[g:g + group]
        if len(chunk) < 2:
            chunk = rows[g - 1:g + group]
        context, placed = _paragraph(rng, chunk, sentences)
        cid = f"{kind}-{g // group:02d}"
        for row, start in placed:
            for q, field in rng.sample(questions, per_row):
                answer = row[field]
                at = _find(context, answer, start)
                out.append({"id": f"{cid}-{len(out):03d}", "context_id": cid, "question": q.format(*row),
                            "context": context, "answers": {"text": [answer], "answer_start": [at]}})
    return out


def build(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    records += _records(rng, COUNTRIES, COUNTRY_SENTENCES, COUNTRY_QUESTIONS, "country", 3, 4)
    records += _records(rng, MODELS, MODEL_SENTENCES, MODEL_QUESTIONS, "model", 4, 3)
    records += _records(rng, PEOPLE, PEOPLE_SENTENCES, PEOPLE_QUESTIONS, "person", 3, 3)
    # Long paragraphs: eight countries in one context (well past a 128-token window, so the stride matters).
    rows = list(COUNTRIES)
    rng.shuffle(rows)
    for g in range(0, 24, 8):
        context, placed = _paragraph(rng, rows[g:g + 8], COUNTRY_SENTENCES)
        cid = f"long-{g // 8:02d}"
        for row, start in placed:
            q, field = rng.choice(COUNTRY_QUESTIONS)
            records.append({"id": f"{cid}-{len(records):03d}", "context_id": cid, "question": q.format(*row),
                            "context": context,
                            "answers": {"text": [row[field]], "answer_start": [_find(context, row[field], start)]}})
    text = _sample_text()
    for i, (q, a) in enumerate(SAMPLE_QUESTIONS):
        records.append({"id": f"sample-{i:03d}", "context_id": "sample-00", "question": q, "context": text,
                        "answers": {"text": [a], "answer_start": [_find(text, a, 0)]}})
    for r in records:
        ctx, (a,), (s,) = r["context"], r["answers"]["text"], r["answers"]["answer_start"]
        assert ctx[s:s + len(a)] == a, r
    return records


def split(records: list[dict], seed: int = 0, test_share: float = 0.35) -> tuple[list[dict], list[dict]]:
    """Whole paragraphs go to the test split (stratified by kind), so a test context is never seen in training."""
    rng = random.Random(seed + 1)
    by_kind: dict[str, list[str]] = {}
    for r in records:
        kind = r["context_id"].rsplit("-", 1)[0]
        ids = by_kind.setdefault(kind, [])
        if r["context_id"] not in ids:
            ids.append(r["context_id"])
    test_ids: set[str] = set()
    for kind, ids in sorted(by_kind.items()):
        if kind == "sample":
            continue  # the project's own paragraph stays in training
        rng.shuffle(ids)
        test_ids.update(ids[:max(1, round(len(ids) * test_share))])
    train = [r for r in records if r["context_id"] not in test_ids]
    test = [r for r in records if r["context_id"] in test_ids]
    return train, test


def main() -> None:
    train, test = split(build())
    for name, rows in (("qa.jsonl", train), ("qa-test.jsonl", test)):
        with open(OUT / name, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} questions, {len({r['context_id'] for r in rows})} contexts")


if __name__ == "__main__":
    main()
