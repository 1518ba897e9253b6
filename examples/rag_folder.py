"""RAG over a folder of text files: index them, let the agent search, open and quote them.

    python examples/rag_folder.py [FOLDER] --model smollm2-135m

Without FOLDER it writes a small sample folder first. The index here is BM25 (tooltoken.tools
`BM25Search`, no model needed); the browser tools (search, open, find, quote) work the same over
any `SearchBackend`, the vector index of `tooltoken index` included. Sources in the answer's
citations are the files, with line ranges.
"""

import argparse
import os
import tempfile
from pathlib import Path

from tooltoken import Agent
from tooltoken.tools import BM25Search, Browser, Document

SAMPLE = {
    "tolstoy.txt": "War and Peace is a novel by the Russian author Leo Tolstoy. It was published in 1869.",
    "everest.txt": "Mount Everest is Earth's highest mountain above sea level, in the Himalayas.",
    "python.md": "# Python\nPython is a programming language created by Guido van Rossum, first released in 1991.",
}


def documents(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".txt", ".md") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            yield Document(id=str(path.relative_to(folder)), title=path.stem, text=text, location=str(path))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("folder", nargs="?", type=Path)
    p.add_argument("--question", default="Who wrote War and Peace?")
    p.add_argument("--model", default=os.environ.get("TOOLTOKEN_MODEL"))
    p.add_argument("--max-tokens", type=int, default=64)
    args = p.parse_args()

    work = Path(tempfile.mkdtemp())
    folder = args.folder
    if folder is None:
        folder = work / "docs"
        folder.mkdir()
        for name, text in SAMPLE.items():
            (folder / name).write_text(text)
    index = BM25Search.build(documents(folder), work / "index")
    print(f"indexed {len(index)} files from {folder}")
    print("search:", [(h.id, round(h.score, 2)) for h in index.search(args.question, k=2)])

    agent = Agent(model=args.model, tools=Browser(index).tools(), max_tokens=args.max_tokens)
    # tool_choice="search": start with a search (small models do not decide to on their own)
    final = agent.run(args.question, tool_choice="search")
    for call, result in zip(final.tool_calls, final.tool_results, strict=False):
        print(f"{call.name}({call.arguments}) ->\n{result.content}")
    print("answer:", final.answer.strip())
    for c in final.citations:
        print(f"  [{c.marker}] {'verified' if c.verified else 'unverified: ' + c.reason} "
              f"{[s.get('id') for s in c.sources]}")


if __name__ == "__main__":
    main()
