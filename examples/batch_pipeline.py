"""A batch pipeline: questions in JSONL, answers with citations in JSONL, resumable.

    python examples/batch_pipeline.py --model smollm2-135m [--out answers.jsonl]

The same as `tooltoken run questions.jsonl -o answers.jsonl`. Run it twice: the second run skips
every id already answered. A question that fails is written with an `error` and counted; the run
goes on.
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

from tooltoken import run_batch
from tooltoken.tools.calculator import calculator

QUESTIONS = [
    {"id": "q1", "question": "What is 1234 * 5678?", "source": "example"},
    {"id": "q2", "question": "What is 2 to the power of 20?", "source": "example"},
    {"id": "q3", "question": "", "source": "example"},  # no question: recorded as a failure
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.environ.get("TOOLTOKEN_MODEL"))
    p.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp()) / "answers.jsonl")
    p.add_argument("--max-tokens", type=int, default=32)
    args = p.parse_args()

    questions = args.out.with_name("questions.jsonl")
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))

    def progress(done: int, total: int, failed: int) -> None:
        print(f"  {done}/{total} done, {failed} failed")

    for attempt in (1, 2):
        summary = run_batch(questions, args.out, model=args.model, tools=[calculator],
                            tool_choice="calculator", max_tokens=args.max_tokens, progress=progress)
        print(f"run {attempt}: {summary.answered} answered, {summary.failed} failed, {summary.skipped} skipped")

    for line in args.out.read_text().splitlines():
        row = json.loads(line)
        if row["error"]:
            print(f"{row['id']}: failed: {row['error']['message']}")
        else:
            results = [r["content"] for r in row["tool_results"]]
            print(f"{row['id']}: tool results {results}; answer {row['answer'].strip()[:80]!r}")


if __name__ == "__main__":
    main()
