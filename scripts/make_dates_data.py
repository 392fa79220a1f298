"""Write the bundled seq2seq set (resources/data/dates.jsonl and dates-test.jsonl): a date written in
words, in several styles, and its ISO 8601 form. Deterministic (seeded); the test split holds dates the training
split never has. Run again to regenerate:

    python scripts/make_dates_data.py
"""

from __future__ import annotations

import datetime
import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "resources" / "data"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINAL_ONES = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                "nine": "ninth", "twelve": "twelfth"}


def cardinal(n: int) -> str:
    """0–99 in words: 'forty-two'."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + ("" if ones == 0 else "-" + ONES[ones])


def ordinal(n: int) -> str:
    """1–31 as an ordinal in words: 'twenty-first', 'thirtieth'."""
    words = cardinal(n)
    head, _, last = words.rpartition("-")
    if last in ORDINAL_ONES:
        last = ORDINAL_ONES[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}-{last}" if head else last


def year_words(y: int) -> str:
    """A year as people say it: 1992 'nineteen ninety-two', 2005 'two thousand five', 1905 'nineteen oh five'."""
    hi, lo = divmod(y, 100)
    if 2000 <= y < 2010:
        return "two thousand" + ("" if lo == 0 else " " + ONES[lo])
    if lo == 0:
        return f"{cardinal(hi)} hundred"
    if lo < 10:
        return f"{cardinal(hi)} oh {ONES[lo]}"
    return f"{cardinal(hi)} {cardinal(lo)}"


STYLES = [
    lambda d: f"the {ordinal(d.day)} of {MONTHS[d.month - 1]} {year_words(d.year)}",
    lambda d: f"{MONTHS[d.month - 1]} {ordinal(d.day)}, {year_words(d.year)}",
    lambda d: f"{ordinal(d.day)} {MONTHS[d.month - 1]} {year_words(d.year)}",
]


def build(seed: int = 0, n_train: int = 600, n_test: int = 150) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    start, span = datetime.date(1900, 1, 1), (datetime.date(2029, 12, 31) - datetime.date(1900, 1, 1)).days
    days = rng.sample(range(span + 1), n_train + n_test)
    rows = []
    for k, offset in enumerate(days):
        d = start + datetime.timedelta(days=offset)
        rows.append({"input": rng.choice(STYLES)(d), "output": d.isoformat(), "id": f"date-{k:04d}"})
    return rows[:n_train], rows[n_train:]


def main() -> None:
    assert ordinal(21) == "twenty-first" and ordinal(30) == "thirtieth" and ordinal(12) == "twelfth"
    assert year_words(1992) == "nineteen ninety-two" and year_words(2005) == "two thousand five"
    train, test = build()
    for name, rows in (("dates.jsonl", train), ("dates-test.jsonl", test)):
        with open(OUT / name, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"{name}: {len(rows)} pairs")


if __name__ == "__main__":
    main()
