"""Whether llama.cpp's weight repacking is safe on this CPU.

llama.cpp repacks weights into the layouts of the fastest kernels the CPU advertises (AMX tiles on
recent Xeons). Some virtual machines advertise AMX (`amx_tile` in /proc/cpuinfo, and the kernel
grants the tile permission) but fault on the first tile instruction: the process dies of SIGILL in
the middle of an answer. So on a CPU that advertises AMX, a child process loads the model with
repacking and evaluates a batch once; if it dies, repacking stays off (the plain kernels give the
same answers, more slowly). The verdict is kept per CPU and llama.cpp build in the user cache dir.

`TOOLTOKEN_REPACK=1` or `0` skips the probe and decides.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["load_llama", "repack_safe"]

_PROBE = """
import sys, llama_cpp
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)
llm.eval(llm.tokenize(b"The quick brown fox jumps over the lazy dog. " * 4))
"""
_VERDICTS: dict[str, bool] = {}
_LOAD_LOCK = threading.Lock()


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def repack_safe(model_path: str) -> bool:
    """True unless this CPU advertises AMX and a child process showed that repacking faults."""
    forced = os.environ.get("TOOLTOKEN_REPACK", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    flags = _cpu_flags()
    if not any(f.startswith("amx") for f in flags):
        return True
    import llama_cpp

    from tooltoken.tools.corpus import cache_dir

    key = hashlib.sha256(" ".join(sorted(flags) + [llama_cpp.__version__]).encode()).hexdigest()[:16]
    if key in _VERDICTS:
        return _VERDICTS[key]
    cache = cache_dir() / f"repack-{key}.json"
    try:
        verdict = bool(json.loads(cache.read_text())["safe"])
    except (OSError, ValueError, KeyError, TypeError):
        probed = _probe(model_path)
        if probed is None:  # the child failed for another reason: the real load will say which
            return True
        verdict = probed
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"safe": verdict}))
            os.replace(tmp, cache)  # atomic: a reader sees the old file or the new one
        except OSError:
            pass  # an unwritable cache costs one probe a process, nothing else
    _VERDICTS[key] = verdict
    return verdict


def _probe(model_path: str) -> bool | None:
    """True: repacked kernels ran; False: the child died of SIGILL; None: it failed otherwise."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, model_path], capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode == 0:
        return True
    return False if done.returncode == -signal.SIGILL else None


def load_llama(llama_cpp: Any, *, repack: bool = True, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(**kwargs)`, with weight repacking (llama.cpp's `use_extra_bufts`) off if
    asked or unsafe here (`repack_safe`). llama-cpp-python 0.3.36 has no argument for it: its
    __init__ reads `llama_model_default_params()`, which is swapped for the call (under a lock)."""
    if repack and repack_safe(str(kwargs["model_path"])):
        return llama_cpp.Llama(**kwargs)
    import llama_cpp.llama as module

    lib = module.llama_cpp
    default = lib.llama_model_default_params

    def no_repack() -> Any:
        params = default()
        params.use_extra_bufts = False
        return params

    with _LOAD_LOCK:
        lib.llama_model_default_params = no_repack
        try:
            return llama_cpp.Llama(**kwargs)
        finally:
            lib.llama_model_default_params = default
