"""Import torch and transformers ahead of the first model load, in steps that never hold Python's GIL for long.

The window runs its model work in worker threads; the GUI thread needs the GIL for every event. A thread running
Python code hands the GIL over every 5 ms, but three parts of a first load keep it far longer (measured on the
2-core development machine, see README "Benchmarks"):

- loading torch's native library (``libtorch_cpu.so``, about 350 ms) happens inside ``import torch`` while the
  importing thread holds the GIL. Opened beforehand through libc's ``dlopen`` (a ctypes foreign call, which
  releases the GIL), the later import finds it loaded.
- Python's full garbage collections (generation 2) run in whichever thread allocates, with the GIL held. Imports
  create some 10^6 objects, so each full pass over them grew to 100-220 ms. Collection is paused while the
  modules import, and the imported objects are then frozen (``gc.freeze``): later full passes skip them.
- the modules transformers imports lazily inside ``from_pretrained`` (modeling, tokenizer and GGUF modules of the
  bundled architectures): imported here, one step each, so a load finds them ready.

``warm_up`` is idempotent; ``load_model`` calls it first, and the window runs it as a job once it has painted.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from explorer.core.io.progress import Progress, check, no_progress

log = logging.getLogger(__name__)

# Native libraries opened before their Python module imports, relative to the package folder. libtorch_cpu.so
# pulls in libc10 and libgomp through its own RUNPATH.
NATIVE_LIBRARIES: tuple[tuple[str, str], ...] = (("torch", "lib/libtorch_cpu.so"),)

# The architectures of the bundled models (MiniLM: bert, SmolLM2: llama, gemma3: gemma3 with gemma's tokenizer).
BUNDLED_MODEL_TYPES = ("bert", "llama", "gemma", "gemma3")

# Modules a load imports, in import order; each is one step. Heavy dependencies first, so no single step is long.
BASE_MODULES = (
    "torch",
    "safetensors.torch",
    "tokenizers",
    "transformers",
    "transformers.configuration_utils",
    "transformers.tokenization_utils_base",
    "transformers.modeling_utils",
    "transformers.models.auto.configuration_auto",
    "transformers.models.auto.tokenization_auto",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.processing_auto",
    "transformers.models.auto.image_processing_auto",
    "transformers.models.auto.feature_extraction_auto",
    "transformers.models.auto.video_processing_auto",
    # the de-quantisation of a GGUF on a model's first load
    "gguf",
    "transformers.integrations.ggml",
    "transformers.modeling_gguf_pytorch_utils",
    "explorer.core.models.minilm_mlm",
    "ijson",
)


# The tokenizer classes the bundled models' folders name; transformers finds each by importing the modules of the
# model types that map to it (BertTokenizer: transformers.models.align first), so they are looked up here.
BUNDLED_TOKENIZER_CLASSES = ("BertTokenizer", "TokenizersBackend", "GemmaTokenizer")


def model_modules(model_types: tuple[str, ...] = BUNDLED_MODEL_TYPES) -> list[str]:
    """The configuration, modeling and tokenizer modules transformers has for ``model_types``."""
    names = []
    for t in model_types:
        for part in ("configuration", "modeling", "tokenization", "tokenization_fast"):
            suffix = f"tokenization_{t}_fast" if part == "tokenization_fast" else f"{part}_{t}"
            names.append(f"transformers.models.{t}.{suffix}")
    return names


_lock = threading.Lock()
_done = False
_gc_lock = threading.Lock()
_gc_depth = 0
_gc_was_enabled = True


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection inside the block (nested and across threads: the outermost exit restores)."""
    global _gc_depth, _gc_was_enabled
    with _gc_lock:
        if _gc_depth == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_depth += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_depth -= 1
            if _gc_depth == 0 and _gc_was_enabled:
                gc.enable()


def is_warm() -> bool:
    return _done


def open_native_library(path: str | os.PathLike) -> bool:
    """dlopen a shared library without holding the GIL (ctypes releases it around foreign calls).

    Flags as the later import uses them (RTLD_NOW | RTLD_LOCAL), so nothing changes but when it is read.
    """
    libc = ctypes.CDLL(None)
    dlopen = libc.dlopen
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return bool(dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL))


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # top-level package: nothing is imported
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def steps() -> list[tuple[str, str]]:
    """The warm-up's steps in order: ("native", path), ("import", module) or ("tokenizer", class name)."""
    out: list[tuple[str, str]] = []
    if hasattr(os, "RTLD_NOW"):  # dlopen exists (Linux, macOS)
        for package, rel in NATIVE_LIBRARIES:
            folder = _package_dir(package)
            if folder is not None and (folder / rel).is_file():
                out.append(("native", str(folder / rel)))
    out += [("import", m) for m in BASE_MODULES]
    out += [("import", m) for m in model_modules()]
    out += [("tokenizer", c) for c in BUNDLED_TOKENIZER_CLASSES]
    return out


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def warm_up(progress: Progress = no_progress, cancel: threading.Event | None = None) -> list[tuple[str, float]]:
    """Run the steps once (later calls return at once); returns (step, seconds) for the steps this call ran.

    A step that fails is logged and skipped: the load that needs the module then imports it itself and reports
    the error in its own words.
    """
    global _done
    timings: list[tuple[str, float]] = []
    with _lock:
        if _done:
            return timings
        todo = steps()
        with gc_paused():
            for i, (kind, what) in enumerate(todo):
                check(cancel)
                progress(i / len(todo), "Preparing the model libraries…")
                t0 = time.perf_counter()
                try:
                    if kind == "native":
                        if not open_native_library(what):
                            log.debug("dlopen %s failed", what)
                    elif kind == "tokenizer":
                        from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

                        tokenizer_class_from_name(what)
                    elif _module_exists(what):
                        importlib.import_module(what)
                except Exception as err:  # noqa: BLE001 - an optional module that does not import
                    log.warning("warm-up step %s %s failed: %s", kind, what, err)
                timings.append((what, time.perf_counter() - t0))
            # Everything imported so far lives as long as the process: later full collections need not scan it.
            gc.freeze()
        _done = True
        progress(1.0, "Model libraries ready")
    return timings
