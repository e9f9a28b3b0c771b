"""The compiled float64 kernel: the generated source, compiled and cached.

:mod:`theorybox.engine.template` writes the kernel's source for an update rule
(what it computes, and how it keeps float64 honest far past the underflow wall,
is described there); :func:`build_kernel` compiles it with numba, once per rule,
state layout and switch values.

Compiled kernels are cached on disk (cases.md K14). The generated source is
written to a file whose name is a hash of that source *and* of the source text of
every module the kernel calls into (the rules, the ops namespace, the losses, the
random stream, the template, this file and the rule's own module), then compiled
with ``numba.njit(cache=True)``: a second process loads the machine code, and an
edit to any helper changes the file name, so a stale kernel can never be served.
The directory is ``$THEORYBOX_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/theorybox``,
else ``$XDG_CACHE_HOME/theorybox`` (``~/.cache/theorybox``);
``THEORYBOX_CACHE_DIR=off`` disables the disk cache. A rule without an importable
source file (defined in a notebook cell or by ``exec``) is compiled in memory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import math
import os
import platform
import re
import sys
import threading
import types
from pathlib import Path

import numba
import numpy as np

from theorybox.arith import ops as ops_module
from theorybox.arith.ops import bind_ops, numba_ops
from theorybox.engine import template as template_module
from theorybox.engine.template import (
    _FAST,
    _FORMAT,
    _GRID,
    _HI,
    _JUMP,
    _LO,
    SCHEME_CODES,
    kernel_source,
    reads_argument,
    switch_positions,
    switch_values,
)
from theorybox.losses import exp_or_zero, log_weight_scalar
from theorybox.optimizers import rules as rules_module
from theorybox.rng import epoch_key_nb, permutation_nb, uniform_nb

__all__ = [
    "SCHEME_CODES",
    "build_kernel",
    "cache_dir",
    "kernel_source",
    "reads_argument",
    "switch_positions",
    "switch_values",
]

logger = logging.getLogger(__name__)


# The on-disk cache (K14).


def cache_dir() -> Path | None:
    """Where generated kernels are written, or ``None`` when the cache is off."""
    chosen = os.environ.get("THEORYBOX_CACHE_DIR")
    if chosen is not None:
        if chosen.strip().lower() in ("", "0", "off", "none", "false"):
            return None
        return Path(chosen).expanduser()
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        return Path(numba_dir).expanduser() / "theorybox"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "theorybox"


def _source_file(obj) -> Path | None:
    """The source file of a module or function, if it exists on disk."""
    try:
        name = inspect.getsourcefile(obj)
    except TypeError:
        return None
    if not name:
        return None
    path = Path(name)
    return path if path.is_file() else None


def _rule_dependencies(rule) -> list[Path] | None:
    """Source files a rule's compiled code depends on, or ``None`` if unknown.

    The rule's own module, and the modules of the functions and modules it names
    (other than ``ops``, which is rebound). ``None`` (compile in memory) when the
    rule has no source file, is a closure, or its source is not in that file.
    """
    if rule.__closure__:
        return None
    own = _source_file(rule)
    if own is None:
        return None
    try:
        text = inspect.getsource(rule)
    except (OSError, TypeError):
        return None
    if text not in own.read_text(errors="replace"):
        return None
    files = [own]
    for name in rule.__code__.co_names:
        if name == "ops" or name not in rule.__globals__:
            continue
        value = rule.__globals__[name]
        target = getattr(value, "py_func", value)
        if isinstance(target, types.ModuleType | types.FunctionType):
            path = _source_file(target)
            if path is None and isinstance(target, types.FunctionType):
                return None
            if path is not None:
                files.append(path)
    return files


def _cache_key(spec, source: str, rule_files: list[Path]) -> str:
    """A hash of the generated source and every source text it depends on."""
    digest = hashlib.sha256()
    parts = [
        _FORMAT,
        source,
        spec.rule.__module__,
        spec.rule.__qualname__,
        numba.__version__,
        np.__version__,
        platform.python_version(),
    ]
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    modules = [rules_module, ops_module, sys.modules["theorybox.losses"],
               sys.modules["theorybox.rng"], template_module, sys.modules[__name__]]
    files = [Path(module.__file__) for module in modules] + list(rule_files)
    for path in sorted(set(files)):
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def _write_once(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically unless it is already there.

    An existing file is never rewritten: numba keys its cache index on the file's
    modification time, so a rewrite would discard the compiled code.
    """
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _globals_for(spec) -> dict:
    return {
        "np": np,
        "math": math,
        "numba": numba,
        "RULE": numba.njit(inline="always")(bind_ops(spec.rule, numba_ops)),
        "log_weight_scalar": log_weight_scalar,
        "exp_or_zero": exp_or_zero,
        "epoch_key_nb": epoch_key_nb,
        "permutation_nb": permutation_nb,
        "uniform_nb": uniform_nb,
        "HI": _HI,
        "LO": _LO,
        "JUMP": _JUMP,
        "FAST": _FAST,
        "GRID": _GRID,
    }


def _compile_on_disk(spec, source: str, directory: Path):
    """Import the kernel from a hash-named file and jit it with ``cache=True``."""
    rule_files = _rule_dependencies(spec.rule)
    if rule_files is None:
        logger.debug(
            "rule %s of %s has no source file to hash: compiling in memory",
            spec.rule.__qualname__, spec.name,
        )
        return None
    key = _cache_key(spec, source, rule_files)
    slug = re.sub(r"\W", "_", spec.rule.__qualname__)
    module_name = f"theorybox_kernel_{slug}_{key}"
    path = directory / f"{module_name}.py"
    header = (
        f"# Generated by theorybox for the rule "
        f"{spec.rule.__module__}.{spec.rule.__qualname__}.\n"
        "# The file name hashes this source and every module it depends on; the\n"
        "# names it uses are supplied by theorybox.engine.kernel before import.\n"
    )
    try:
        _write_once(path, header + source)
    except OSError as error:
        logger.debug("cannot write the kernel cache at %s (%s): compiling in memory",
                     directory, error)
        return None
    module = sys.modules.get(module_name)
    if module is None:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        module.__dict__.update(_globals_for(spec))
        module_spec.loader.exec_module(module)
        module.one_run = numba.njit(module.one_run)
        sys.modules[module_name] = module
    logger.debug("kernel for %s from %s", spec.name, path)
    return module, path


def _compile_in_memory(spec, source: str):
    namespace = _globals_for(spec)
    exec(compile(source, f"<theorybox kernel {spec.name}>", "exec"), namespace)
    module = types.SimpleNamespace(**namespace)
    module.one_run = numba.njit(namespace["one_run"])
    # serial and parallel resolve one_run through their globals.
    namespace["one_run"] = module.one_run
    return module


class Kernel:
    """A compiled kernel: ``serial`` and ``parallel`` drivers of one rule.

    Attributes
    ----------
    serial, parallel : numba dispatchers
        Same arguments; ``parallel`` advances the runs with ``numba.prange``.
    path : Path or None
        The generated source file (``None``: compiled in memory).
    """

    def __init__(self, name, serial, parallel, path):
        self.name = name
        self.serial = serial
        self.parallel = parallel
        self.path = path
        self._reported = set()

    def __call__(self, *args, parallel: bool = False):
        dispatcher = self.parallel if parallel else self.serial
        dispatcher(*args)
        if dispatcher not in self._reported:
            self._reported.add(dispatcher)
            self._report(dispatcher)

    def _report(self, dispatcher) -> None:
        stats = getattr(dispatcher, "stats", None)
        hits = sum(stats.cache_hits.values()) if stats is not None else 0
        if hits:
            logger.debug("loaded kernel %s.%s from the on-disk cache %s",
                         self.name, dispatcher.py_func.__name__, stats.cache_path)
        else:
            logger.debug("compiled kernel %s.%s", self.name,
                         dispatcher.py_func.__name__)


_CACHE: dict = {}
_LOCK = threading.Lock()


def build_kernel(spec, switches=(), fast_path=True) -> Kernel:
    """The compiled kernel for ``spec`` and switch values ``switches``.

    Compiled once per rule, state layout and switch values (see
    :func:`switch_values`); loaded from the on-disk cache when it is there.
    ``fast_path=False`` compiles the kernel without its fast path for dense steps
    (same results, slower; for tests).
    """
    switches = tuple(switches)
    key = (spec.rule, spec.state, len(spec.hyper), switches, fast_path)
    with _LOCK:
        kernel = _CACHE.get(key)
        if kernel is not None:
            return kernel
        source = kernel_source(spec, switches, fast_path)
        directory = cache_dir()
        built = _compile_on_disk(spec, source, directory) if directory else None
        if built is not None:
            module, path = built
            serial = numba.njit(cache=True)(module.serial)
            parallel = numba.njit(cache=True, parallel=True)(module.parallel)
        else:
            module, path = _compile_in_memory(spec, source), None
            serial = numba.njit(module.serial)
            parallel = numba.njit(parallel=True)(module.parallel)
        kernel = Kernel(spec.name, serial, parallel, path)
        _CACHE[key] = kernel
        logger.debug("generated kernel for %s", spec.name)
        return kernel
