"""A tool of your own: a typed Python function and its docstring.

    python examples/custom_tool.py --model smollm2-135m

The signature becomes the JSON schema the call is generated under (so a call always has the
right argument names and types); the docstring is what the model reads. Returning a
`ToolOutput` with `Source`s makes the answer's citations point at them.
"""

import argparse
import os

from tooltoken import Agent, Source, ToolOutput, tool

STOCK = {"apples": 12, "pears": 0, "plums": 41}


@tool
def stock(item: str) -> ToolOutput:
    """How many of an item the shop has in stock.

    item: the item's name in plural, e.g. "apples"
    """
    count = STOCK.get(item.lower().strip())
    if count is None:  # an error the model reads, not a crash
        raise KeyError(f"unknown item {item!r}; known items: {', '.join(STOCK)}")
    return ToolOutput(f"{count} {item} in stock", [Source(id=f"inventory:{item}", title="Inventory",
                                                          text=f"{item}: {count}")])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.environ.get("TOOLTOKEN_MODEL"))
    p.add_argument("--max-tokens", type=int, default=48)
    args = p.parse_args()

    print("schema:", stock.schema()["function"]["parameters"])
    agent = Agent(model=args.model, tools=[stock], max_tokens=args.max_tokens)
    # tool_choice="stock" makes the first step a call to it (small models rarely call on their own)
    final = agent.run("How many apples are in stock?", tool_choice="stock")
    call = final.tool_calls[0]
    print(f"call: {call.name}({call.arguments}) -> {final.tool_results[0].content}")
    print("answer:", final.answer.strip())
    for c in final.citations:
        print(f"  [{c.marker}] {'verified' if c.verified else 'unverified: ' + c.reason}")


if __name__ == "__main__":
    main()
