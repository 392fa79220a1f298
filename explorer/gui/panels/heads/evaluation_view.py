"""The evaluation view: a model scored on a labelled file (accuracy, per-class F1, the confusion matrix), used
by the run view (the chosen model) and the fine-tune lab (the last fine-tune)."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QSplitter, QTextBrowser, QWidget

from explorer.gui.widgets.chart import ChartWidget


class EvaluationView(QSplitter):
    """The confusion matrix beside the figures; ``evaluate`` scores a model in the background."""

    evaluated = Signal(object)  # the EvalResult, once drawn

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.result = None
        self.chart = ChartWidget(title="Confusion matrix")
        self.text = QTextBrowser()
        self.text.setMinimumWidth(250)
        self.addWidget(self.chart)
        self.addWidget(self.text)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 2)
        self.setSizes([600, 300])

    def evaluate(self, lm, path: str, task: str | None, note: QLabel) -> None:
        """Score ``lm`` on every row of ``path`` (batched, in the background); ``note`` says how it went."""
        from explorer.core.tuning.evaluation import confusion_chart, evaluate

        if "question-answering" in lm.heads:
            self._evaluate_qa(lm, path, note)
            return

        def done(result) -> None:
            self.result = result
            self.chart.set_spec(confusion_chart(result))
            self.text.setHtml(eval_html(result))
            note.setText(f"{lm.name} on {Path(path).name}: accuracy {result.accuracy:.1%}, macro-F1 "
                         f"{result.macro_f1:.3f} over {result.n} rows in {result.seconds:.1f} s. The confusion matrix "
                         "exports from its chart menu.")
            self.evaluated.emit(result)

        note.setText(f"Evaluating {lm.name} on {Path(path).name}…")
        self.ctx.runner.submit(evaluate, lm, path, task, label="Evaluate", on_result=done, on_error=note.setText)


    def _evaluate_qa(self, lm, path: str, note: QLabel) -> None:
        """SQuAD v1.1 exact match and F1 of a span head on a QA file, and the questions it got wrong."""
        from explorer.core.tuning.extractive import evaluate_qa, scores_chart

        def done(result) -> None:
            self.result = result
            self.chart.set_spec(scores_chart(result))
            wrong = [p for p in result.predictions if not p["exact_match"]][:12]
            rows = "".join(f"<tr><td>{html.escape(p['question'])}</td><td>{html.escape(p['prediction'])}</td>"
                           f"<td>{html.escape(' / '.join(p['answers']))}</td></tr>" for p in wrong)
            self.text.setHtml(f"<p><b>Exact match {result.exact_match:.1%}</b>, <b>F1 {result.f1:.1%}</b> over "
                              f"{result.n} questions (SQuAD v1.1 rules)</p><table cellspacing=4><tr><th>question"
                              f"</th><th>predicted</th><th>gold</th></tr>{rows}</table>")
            note.setText(f"{lm.name} on {Path(path).name}: exact match {result.exact_match:.1%}, F1 {result.f1:.1%} "
                         f"over {result.n} questions in {result.seconds:.1f} s.")
            self.evaluated.emit(result)

        note.setText(f"Evaluating {lm.name} on {Path(path).name}…")
        self.ctx.runner.submit(evaluate_qa, lm, path, label="Evaluate", on_result=done, on_error=note.setText)


def eval_html(r) -> str:
    """The evaluation's figures as a small table (per class, macro-F1, notes)."""
    level = "entity" if r.level == "entity" else "class"
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td align=right>{v['precision']:.2f}</td><td align=right>{v['recall']:.2f}"
        f"</td><td align=right>{v['f1']:.2f}</td><td align=right>{v['support']}</td></tr>"
        for name, v in r.per_class.items())
    over = f"{r.units} words in {r.n} rows" if r.level == "entity" else f"{r.n} rows"
    notes = "".join(f"<p style='color:#a15c00'>{html.escape(n)}</p>" for n in r.notes)
    return (f"<p><b>Accuracy {r.accuracy:.1%}</b> over {over}; macro-F1 <b>{r.macro_f1:.3f}</b>"
            + (" (entity level: exact spans)" if r.level == "entity" else "") + "</p>"
            f"<table cellspacing=4><tr><th align=left>{level}</th><th>P</th><th>R</th><th>F1</th>"
            f"<th>n</th></tr>{rows}</table><p style='color:#555'>P precision, R recall, n gold count</p>{notes}")

