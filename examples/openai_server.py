"""Serve the agent over the OpenAI API and talk to it with the official client.

    pip install 'tooltoken[server]' openai
    python examples/openai_server.py --model smollm2-135m

The same server as `tooltoken serve --api-key KEY`. Tool calls run on the server; what the
answer rests on (tool calls, results, checked citations) is in the extra `tooltoken` field.
"""

import argparse
import os
import socket
import threading
import time

import openai
import uvicorn

from tooltoken import Agent
from tooltoken.app.server import create_app
from tooltoken.tools.calculator import calculator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.environ.get("TOOLTOKEN_MODEL"))
    args = p.parse_args()

    app = create_app(Agent(model=args.model, tools=[calculator]), api_key="demo-key",
                     max_tokens_cap=48)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="demo-key")
    r = client.chat.completions.create(model="tooltoken", messages=[{"role": "user", "content": "What is 2**20?"}],
                                       tool_choice="required", max_tokens=32)
    print("answer:", r.choices[0].message.content.strip()[:200])
    print("server-side tool results:", [t["content"] for t in r.model_extra["tooltoken"]["tool_results"]])
    print("streamed:", end=" ")
    for chunk in client.chat.completions.create(model="tooltoken", stream=True, max_tokens=16,
                                                messages=[{"role": "user", "content": "Say hello."}]):
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()
    server.should_exit = True


if __name__ == "__main__":
    main()
