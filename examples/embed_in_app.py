"""Embed the agent in an application: stream its events into your own UI, or just take the answer.

    python examples/embed_in_app.py "What is 17% of 2400?" --model smollm2-135m

Everything the agent does is an event (TextDelta, ToolCall, ToolResult, Final); this "app" draws
them as plain lines. `agent.run(...)` returns only the Final; `agent.arun` / `astream` are the
async twins for web apps.
"""

import argparse
import asyncio
import os

from tooltoken import Agent, Final, TextDelta, ToolCall, ToolResult
from tooltoken.tools.calculator import calculator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("question", nargs="?", default="What is 17% of 2400?")
    p.add_argument("--model", default=os.environ.get("TOOLTOKEN_MODEL"))  # None: the default pack
    p.add_argument("--max-tokens", type=int, default=64)
    args = p.parse_args()

    agent = Agent(model=args.model, tools=[calculator], max_tokens=args.max_tokens)

    # 1. streaming: draw each event as it comes
    for event in agent.stream(args.question, tool_choice="calculator"):
        if isinstance(event, TextDelta):
            print(event.text, end="", flush=True)
        elif isinstance(event, ToolCall):
            print(f"\n[calling {event.name} with {event.arguments}]")
        elif isinstance(event, ToolResult):
            print(f"[result {event.source}: {event.content}]")
        elif isinstance(event, Final):
            print(f"\n[done: {event.stop_reason}; {len(event.citations)} citation(s); "
                  f"{event.usage.completion_tokens} tokens in {event.timings['total_s']:.1f} s]")

    # 2. async, as a web handler would: one awaitable answer
    final = asyncio.run(agent.arun(args.question, tool_choice="calculator"))
    print("async answer:", final.answer.strip()[:200])
    print("tool results:", [r.content for r in final.tool_results])


if __name__ == "__main__":
    main()
