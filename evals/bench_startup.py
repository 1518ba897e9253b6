"""`tooltoken bench startup`: what a cold process pays before and while it answers.

Side by side on the same questions, one new process per answer, the modes interleaved question by
question (a noisy machine slows all three alike):

- `bare`: llama-cpp-python alone, the same GGUF, a one-line system prompt, streaming;
- `cold`: `tooltoken ask --events` with an empty prompt cache (every prefix evaluated);
- `warm`: the same with the prompt cache the cold run filled.

Each gives `first_token_s` (process start to its first answer text) and `wall_s` (start to exit),
medians over the questions; `warm_vs_bare` and `cold_vs_bare` are ratios of wall time, and
`*_first_token_vs_bare` of first-token time. tooltoken's runs also report the prompt tokens
evaluated and restored. `in_process` is the per-question cost once loaded, as `tooltoken run` and
`serve` pay it: the bare model's chat completion against `Agent.run` on one process's model.
`imports`: a new interpreter's wall time importing nothing, `tooltoken`, and the CLI.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["QUESTIONS", "bench_startup"]

#: Direct questions (no computation, no lookup): the path where tooltoken should cost the least.
QUESTIONS = (
    "Write a haiku about autumn.",
    "Translate 'good morning, my friend' into Spanish.",
    "Give me three tips for a job interview.",
    "Write a short thank-you note to a neighbour who watered my plants.",
    "Suggest a name for a black cat.",
)
BARE_SYSTEM = "You are a helpful assistant."
_BARE = r"""
import json, os, sys, time
import llama_cpp
path, question, max_tokens, repack = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
lib = llama_cpp.llama_cpp
if not repack:  # the same weights layout tooltoken chose on this CPU (see tooltoken/_cpu.py)
    default = lib.llama_model_default_params
    def no_repack():
        p = default(); p.use_extra_bufts = False; return p
    lib.llama_model_default_params = no_repack
llm = llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=os.cpu_count(), flash_attn=True, verbose=False)
messages = [{"role": "system", "content": sys.argv[5]}, {"role": "user", "content": question}]
n = 0
for chunk in llm.create_chat_completion(messages, max_tokens=max_tokens, temperature=0, stream=True):
    if chunk["choices"][0]["delta"].get("content"):
        if n == 0:
            print("FIRST", flush=True)
        n += 1
print(json.dumps({"completion_tokens": n}), flush=True)
llm.close()
"""


def _timed(argv: list[str], env: dict[str, str], first: str) -> dict[str, Any]:
    """Run `argv`; the time to its first stdout line starting with `first`, to exit, and its last line."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first_at, last = None, ""
    assert proc.stdout is not None
    for line in proc.stdout:
        if first_at is None and line.startswith(first):
            first_at = time.perf_counter() - start
        if line.strip():
            last = line
    err = proc.stderr.read() if proc.stderr else ""
    code = proc.wait()
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{argv[:3]}... exited {code}: {err[-2000:]}")
    return {"first_token_s": first_at if first_at is not None else wall, "wall_s": wall, "last": last}


def bench_startup(model: str | None = None, questions: Sequence[str] = QUESTIONS, *, max_tokens: int = 48,
                  repeats: int = 1, in_process: bool = True) -> dict[str, Any]:
    from tooltoken._cpu import repack_safe
    from tooltoken._models import resolve_model

    path = str(resolve_model(model))
    repack = "1" if repack_safe(path) else "0"
    cache = Path(tempfile.mkdtemp(prefix="tooltoken-bench-startup-"))
    env = dict(os.environ, TOOLTOKEN_PROMPT_CACHE_DIR=str(cache), COLUMNS="200")
    env.pop("TOOLTOKEN_PROMPT_CACHE", None)
    ask = [sys.executable, "-c", "from tooltoken.app.cli import main; main()", "ask", "--events", "--model", path,
           "--max-tokens", str(max_tokens)]
    rows: dict[str, list[dict[str, Any]]] = {"bare": [], "cold": [], "warm": []}
    try:
        for _ in range(repeats):
            for q in questions:
                bare = _timed([sys.executable, "-c", _BARE, path, q, str(max_tokens), repack, BARE_SYSTEM], env, "FIRST")
                bare["completion_tokens"] = json.loads(bare.pop("last"))["completion_tokens"]
                rows["bare"].append(bare)
                shutil.rmtree(cache, ignore_errors=True)  # cold: nothing saved before
                for mode in ("cold", "warm"):
                    run = _timed([*ask, q], env, '{"event": "TextDelta"')
                    final = json.loads(run.pop("last"))
                    usage = final.get("usage", {})
                    run.update(route=final.get("route"), completion_tokens=usage.get("completion_tokens", 0),
                               prompt_tokens=usage.get("prompt_tokens", 0),
                               prefix_evaluated=usage.get("prompt_tokens_evaluated", 0),
                               prefix_restored=usage.get("prompt_tokens_restored", 0),
                               warnings=final.get("warnings", []))
                    rows[mode].append(run)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    out: dict[str, Any] = {"model": os.path.basename(path), "questions": len(questions), "repeats": repeats,
                           "max_tokens": max_tokens}
    for mode, runs in rows.items():
        out[mode] = {k: round(statistics.median(r[k] for r in runs), 3) for k in ("first_token_s", "wall_s")}
        out[mode]["completion_tokens"] = sum(r["completion_tokens"] for r in runs)
        if mode != "bare":
            for k in ("prompt_tokens", "prefix_evaluated", "prefix_restored"):
                out[mode][k] = sum(r[k] for r in runs)
            out[mode]["routes"] = sorted({str(r["route"]) for r in runs})
            out[mode]["warnings"] = sorted({w for r in runs for w in r["warnings"]})
    for mode in ("warm", "cold"):
        out[f"{mode}_vs_bare"] = round(out[mode]["wall_s"] / out["bare"]["wall_s"], 2)
        out[f"{mode}_first_token_vs_bare"] = round(out[mode]["first_token_s"] / out["bare"]["first_token_s"], 2)
    out["imports"] = _imports(env)
    if in_process:
        out["in_process"] = _in_process(path, list(questions) * repeats, max_tokens, repack == "1")
    return out


def _imports(env: dict[str, str], runs: int = 5) -> dict[str, float]:
    """Wall seconds of a new interpreter that imports nothing, `tooltoken`, and the CLI (medians)."""
    out = {}
    for name, code in (("python_s", "pass"), ("import_tooltoken_s", "import tooltoken"),
                       ("import_cli_s", "import tooltoken.app.cli")):
        walls = [_timed([sys.executable, "-c", code], env, "\0")["wall_s"] for _ in range(runs)]
        out[name] = round(statistics.median(walls), 3)
    return out


def _in_process(path: str, questions: Sequence[str], max_tokens: int, repack: bool) -> dict[str, Any]:
    """Per question once loaded (`tooltoken run`, `serve`): the bare model's chat completion against
    `Agent.run` with the default tools, each on its own Llama, alternating, after one warm-up each."""
    import llama_cpp

    from tooltoken import Agent
    from tooltoken._cpu import load_llama
    from tooltoken.tools import default_tools

    bare = load_llama(llama_cpp, repack=repack, model_path=path, n_ctx=4096, n_threads=os.cpu_count(),
                      flash_attn=True, verbose=False)
    agent = Agent(model=path, tools=default_tools(), max_tokens=max_tokens)

    def bare_answer(q: str) -> int:
        messages = [{"role": "system", "content": BARE_SYSTEM}, {"role": "user", "content": q}]
        out = bare.create_chat_completion(messages, max_tokens=max_tokens, temperature=0)
        return int(out["usage"]["completion_tokens"])

    bare_answer(questions[0])
    agent.run(questions[0])
    times: dict[str, list[float]] = {"bare": [], "agent": []}
    tokens = {"bare": 0, "agent": 0}
    for q in questions:
        start = time.perf_counter()
        tokens["bare"] += bare_answer(q)
        times["bare"].append(time.perf_counter() - start)
        start = time.perf_counter()
        tokens["agent"] += agent.run(q).usage.completion_tokens
        times["agent"].append(time.perf_counter() - start)
    bare.close()
    # per answer token, so answers of different lengths compare: the overhead is the rest
    per = {k: sum(times[k]) / max(1, tokens[k]) for k in times}
    return {"bare_s": round(sum(times["bare"]), 3), "agent_s": round(sum(times["agent"]), 3),
            "bare_tokens": tokens["bare"], "agent_tokens": tokens["agent"],
            "s_per_token_vs_bare": round(per["agent"] / per["bare"], 3),
            "overhead": round(per["agent"] / per["bare"] - 1, 3)}
