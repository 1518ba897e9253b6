"""Every script in examples/ runs to the end on SmolLM2-135M and prints what it promises."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest



EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# script -> (modules it needs, text its output must hold)
CASES = {
    "embed_in_app.py": ((), ["[calling calculator", "[result 1: ", "async answer:"]),
    "custom_tool.py": ((), ["schema:", "call: stock({'item':", "answer:"]),
    "batch_pipeline.py": ((), ["run 1: 2 answered, 1 failed, 0 skipped", "run 2: 0 answered, 0 failed, 3 skipped",
                               "q1: tool results [", "q3: failed:"]),
    "rag_folder.py": (("bm25s",), ["indexed 3 files", "search(", "answer:"]),
    "langchain_app.py": (("langchain_core", "bm25s"), ["retrieved: ['tolstoy']", "chain answer:",
                                                       "tool call: calculator"]),
    "openai_server.py": (("openai", "uvicorn", "starlette"), ["answer:", "server-side tool results:", "streamed:"]),
}


@pytest.mark.unit
def test_every_example_has_a_smoke_test():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(CASES)


@pytest.mark.integration
@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, smollm2_path, tmp_path):
    needs, expected = CASES[script]
    for module in needs:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{script} needs {module} (an extra)")
    env = dict(os.environ, TOOLTOKEN_MODEL="smollm2-135m", TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, env=env,
                         timeout=900, cwd=tmp_path)
    assert out.returncode == 0, f"{script} failed:\n{out.stdout}\n{out.stderr}"
    for text in expected:
        assert text in out.stdout, f"{script}: {text!r} not in its output:\n{out.stdout}"
