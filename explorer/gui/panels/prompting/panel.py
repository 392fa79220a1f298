"""Prompting panel: GPT-3's zero-, one- and few-shot learning — build a prompt from a task description and
editable examples, stream a generation with the next-token distribution of every step, score label words, and
sweep accuracy against the number of examples K (one line per model, with 95% intervals).

The panel chooses where prompts run (a loaded model or an OpenAI-compatible endpoint) and holds three views,
each with its own widgets and state: the prompt builder, the generation view and the sweep view. The views ask
the panel for the prompt, its backend and the seed, and the builder tells it by a signal when the task changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.core.io.errors import ExplorerError
from explorer.core.prompting.backends import endpoint_origin, is_env_var_name
from explorer.core.prompting.prompts import OUTPUT_FIELD, Example, PromptTemplate
from explorer.core.prompting.tasks import BUILTIN
from explorer.gui.panels.base import Panel, is_saved_example, state_from_dict, state_to_dict, view_parts
from explorer.gui.panels.prompting.builder import PromptBuilder
from explorer.gui.panels.prompting.generation_view import GenerationView
from explorer.gui.panels.prompting.sweep_view import SweepView
from explorer.gui.widgets.model_picker import ModelPicker


@dataclass
class PromptingState:
    """What the panel saves in the session (never an API key: only the name of its environment variable)."""

    task: str = "addition"
    shots: int = 2
    seed: int = 0
    chat: bool = False
    backend: str = "local"
    model: str = "smollm2"
    base_url: str = "http://127.0.0.1:8000/v1"
    http_model: str = ""
    api_key_env: str = ""
    api_key_origin: str = ""  # the endpoint (scheme://host:port) the key variable is tied to; sent nowhere else
    description: str = ""
    template: str = ""
    examples: list = field(default_factory=list)
    query: dict = field(default_factory=dict)
    max_new_tokens: int = 24
    sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    stop: str = "\\n"
    sweep_shots: str = "0,1,2,4,8"
    sweep_draws: int = 3
    sweep_limit: int = 20
    sweep_models: list = field(default_factory=list)  # the ticked models of the sweep (loaded or still loading)


@view_parts(
    builder=("task_combo", "open_button", "shots_spin", "seed_spin", "draw_button", "chat_check", "task_note",
             "description_edit", "template_edit", "examples_table", "query_table", "prompt_view", "token_label",
             "task", "user_tasks", "set_task", "open_data", "open_data_dialog", "draw_examples", "next_query",
             "set_examples", "examples", "query", "add_example_row", "remove_selected_rows", "rebuild_prompt"),
    generation=("max_tokens_spin", "sample_check", "temperature_spin", "top_k_spin", "top_p_spin", "stop_edit",
                "run_button", "score_button", "cancel_button", "output_view", "output_status", "step_list",
                "dist_chart", "result", "score_result", "gen_job", "run_generation", "run_scoring",
                "cancel_generation", "show_step", "clear_output", "_settings"),
    sweep=("sweep_shots_edit", "sweep_draws_spin", "sweep_limit_spin", "sweep_mode", "sweep_button", "sweep_cancel",
           "export_table_button", "sweep_progress", "sweep_chart", "size_chart", "size_axis", "sweep_charts",
           "sweep_model_checks", "results_table", "point_details", "sweeps", "sweep_job", "run_sweep",
           "cancel_sweep", "clear_sweeps", "sweep_models", "sweep_backends", "show_point_details", "table_csv",
           "export_table_dialog"),
)
class PromptingPanel(Panel):
    key = "prompting"
    title = "Prompting"
    summary = "GPT-3 style zero-, one- and few-shot prompts, generation, and accuracy against the number of examples."
    state_class = PromptingState
    setting_checks = {"examples": lambda v: all(isinstance(e, dict) and is_saved_example(e) for e in v),
                      "query": is_saved_example}

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self._build()
        self.sweep._refresh_sweep_models()
        self.ctx.models.changed.connect(self.builder._schedule_rebuild)
        self.ctx.filesChanged.connect(self.builder._files_dropped)
        self.builder.set_task("addition")

    # ------------------------------------------------------------ layout

    def _build(self) -> None:
        # Backend row
        self.backend_combo = QComboBox()
        self.backend_combo.addItems(["Local model", "HTTP endpoint (OpenAI-compatible)"])
        self.backend_combo.setToolTip("Run prompts on a loaded local model, or on a server such as vLLM, TGI, "
                                      "a llama.cpp server or Ollama")
        self.model_picker = ModelPicker(self.ctx, heads=("causal-lm",))
        self.model_picker.modelChanged.connect(lambda *_: self.builder._schedule_rebuild())
        self.url_edit = QLineEdit("http://127.0.0.1:8000/v1")
        self.url_edit.setPlaceholderText("base URL, e.g. http://127.0.0.1:8000/v1")
        self.http_model_edit = QLineEdit()
        self.http_model_edit.setPlaceholderText("model name on the server")
        self.key_env_edit = QLineEdit("")
        self.key_env_edit.setPlaceholderText("e.g. OPENAI_API_KEY")
        self.key_env_edit.setToolTip("Name of the environment variable holding this endpoint's API key (else the "
                                     "system keyring's entry for the URL). The key is sent only to the endpoint it was "
                                     "named for, and is never saved.")
        self.key_env_edit.editingFinished.connect(self._check_key_env)
        self._key_origin = ""  # the endpoint the key variable was named for
        self.url_edit.editingFinished.connect(self._url_changed)
        self.check_button = QPushButton("Check")
        self.check_button.setToolTip("Ask the endpoint which models it serves")
        self.check_button.clicked.connect(self.check_endpoint)
        http_box = QWidget()
        hl = QHBoxLayout(http_box)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(self.url_edit, 3)
        hl.addWidget(self.http_model_edit, 2)
        hl.addWidget(QLabel("key in $"))
        hl.addWidget(self.key_env_edit, 1)
        hl.addWidget(self.check_button)
        self.backend_stack = QStackedWidget()
        self.backend_stack.addWidget(self.model_picker)
        self.backend_stack.addWidget(http_box)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run on"))
        top.addWidget(self.backend_combo)
        top.addWidget(self.backend_stack, 1)

        self.builder = PromptBuilder(self.ctx, self._tokenizer, self._context_length)
        self.generation = GenerationView(self.ctx, self)
        self.sweep = SweepView(self.ctx, self)
        self.builder.taskChosen.connect(self.generation.use_task)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.generation, "Generate / score")
        self.tabs.addTab(self.sweep, "K-shot sweep")

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.builder)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(self.builder.task_row)
        layout.addWidget(self.builder.task_note)
        layout.addWidget(split, 1)

    # ------------------------------------------------------------ backend

    def _backend_changed(self, index: int) -> None:
        self.backend_stack.setCurrentIndex(index)
        self.builder._schedule_rebuild()

    def backend(self) -> Any:
        """The selected backend; raises a message-bearing error when none is usable."""
        from explorer.core.prompting.backends import LocalBackend, OpenAIBackend

        if self.backend_combo.currentIndex() == 1:
            name = self._key_env_name()
            tied = bool(name) and endpoint_origin(self.url_edit.text()) == self._key_origin
            return OpenAIBackend(self.url_edit.text(), self.http_model_edit.text(), name if tied else None)
        lm = self.model_picker.current_model()
        if lm is None:
            raise ExplorerError("Load a causal language model (e.g. smollm2) in the Models panel first.")
        return LocalBackend(lm)

    def _tokenizer(self) -> Any:
        if self.backend_combo.currentIndex() == 1:
            return None
        lm = self.model_picker.current_model()
        return lm.tokenizer if lm is not None else None

    def _context_length(self) -> int | None:
        lm = self.model_picker.current_model() if self.backend_combo.currentIndex() == 0 else None
        return lm.max_length if lm is not None else None

    def check_endpoint(self) -> None:
        try:
            backend = self.backend()
        except ExplorerError as err:
            self.ctx.error(str(err))
            return

        def done(models: list[str]) -> None:
            self.ctx.status(f"{backend.base_url} serves: {', '.join(models) or '(no models listed)'}")
            if models and not self.http_model_edit.text():
                self.http_model_edit.setText(models[0])

        self.ctx.runner.submit(lambda progress, cancel: backend.models(cancel=cancel), label="Checking endpoint",
                               on_result=done, on_error=self.ctx.error)

    # ------------------------------------------------------------ task and examples

    def _key_env_name(self) -> str:
        """The variable name to save; never the field's text when that looks like a key itself."""
        text = self.key_env_edit.text().strip()
        return text if is_env_var_name(text) else ""

    def _check_key_env(self) -> None:
        """A variable name typed here is tied to the endpoint in the URL field; a pasted key is cleared unsaved."""
        text = self.key_env_edit.text().strip()
        if text and not is_env_var_name(text):
            from explorer.core.io.redaction import remember

            remember(text)
            self.key_env_edit.setText("")
            self._key_origin = ""
            self.ctx.error(
                "That field takes the NAME of an environment variable, not the key itself, so what you pasted was "
                "cleared, not shown and not saved. Put the key in a variable (export MY_KEY=…) or the system "
                "keyring, and type the variable's name here."
            )
            return
        self._key_origin = endpoint_origin(self.url_edit.text()) if text else ""

    def _url_changed(self) -> None:
        """Another endpoint does not inherit the key variable named for the previous one."""
        if self._key_env_name() and endpoint_origin(self.url_edit.text()) != self._key_origin:
            self.key_env_edit.setText("")
            self._key_origin = ""
            self.ctx.status("The API-key variable was cleared: a key is only sent to the endpoint it was named for. "
                            "Name it again for this endpoint if it should get the key.")

    # ------------------------------------------------------------ state

    # ------------------------------------------------------------ what the views ask of the panel

    def is_http(self) -> bool:
        """Prompts go to an OpenAI-compatible endpoint, not a loaded model."""
        return self.backend_combo.currentIndex() == 1

    def build(self) -> Any:
        """The prompt as the model receives it (parts, token count), from the builder."""
        return self.builder.build()

    def template(self) -> PromptTemplate:
        """The editor's description and template."""
        return self.builder._template()

    def seed(self) -> int:
        """The seed of the examples' draw, also used for sampling."""
        return self.builder.seed_spin.value()

    def chat(self) -> bool:
        """Whether prompts are written with the model's chat template."""
        return self.builder.chat_check.isChecked()

    # ------------------------------------------------------------ state

    def state_dict(self) -> dict:
        s = PromptingState(
            task=self.task.name if self.task else "addition", shots=self.shots_spin.value(), seed=self.seed_spin.value(),
            chat=self.chat_check.isChecked(), backend="http" if self.backend_combo.currentIndex() else "local",
            model=self.model_picker.current_name() or "", base_url=self.url_edit.text(),
            http_model=self.http_model_edit.text(), api_key_env=self._key_env_name(),
            api_key_origin=self._key_origin if self._key_env_name() else "",
            description=self.description_edit.text(), template=self.template_edit.text(),
            examples=[e.to_dict() for e in self.examples()], query=self.query().to_dict(),
            max_new_tokens=self.max_tokens_spin.value(), sample=self.sample_check.isChecked(),
            temperature=self.temperature_spin.value(), top_k=self.top_k_spin.value(), top_p=self.top_p_spin.value(),
            stop=self.stop_edit.text(), sweep_shots=self.sweep_shots_edit.text(),
            sweep_draws=self.sweep_draws_spin.value(), sweep_limit=self.sweep_limit_spin.value(),
            sweep_models=self.sweep.ticked_names(),
        )
        return state_to_dict(s)

    def restore_state(self, data: dict) -> None:
        s = state_from_dict(PromptingState, data)
        self.backend_combo.setCurrentIndex(1 if s.backend == "http" else 0)
        self.url_edit.setText(s.base_url)
        self.http_model_edit.setText(s.http_model)
        tied = is_env_var_name(s.api_key_env) and bool(s.api_key_origin)  # a variable without its endpoint is not used
        self.key_env_edit.setText(s.api_key_env if tied else "")
        self._key_origin = s.api_key_origin if tied else ""
        if s.model:
            self.model_picker.select(s.model)
        self.seed_spin.setValue(s.seed)
        self.shots_spin.setValue(s.shots)
        self.chat_check.setChecked(s.chat)
        if s.task in BUILTIN:
            self.set_task(s.task)
        self.max_tokens_spin.setValue(s.max_new_tokens)
        self.sample_check.setChecked(s.sample)
        self.temperature_spin.setValue(s.temperature)
        self.top_k_spin.setValue(s.top_k)
        self.top_p_spin.setValue(s.top_p)
        self.stop_edit.setText(s.stop)
        self.sweep_shots_edit.setText(s.sweep_shots)
        self.sweep_draws_spin.setValue(s.sweep_draws)
        self.sweep_limit_spin.setValue(s.sweep_limit)
        if s.sweep_models:
            self.sweep.restore_ticks([str(n) for n in s.sweep_models])
        if s.template:
            self.template_edit.setText(s.template)
        self.description_edit.setText(s.description)
        if s.examples or s.query:
            def ex(d: dict) -> Example:
                d = dict(d)
                answers = d.pop("answers", [])
                return Example({k: str(v) for k, v in d.items() if k != OUTPUT_FIELD}, str(d.get(OUTPUT_FIELD, "")),
                               list(answers))
            self.set_examples([ex(d) for d in s.examples if isinstance(d, dict)], ex(s.query) if s.query else None)
        self.rebuild_prompt()
