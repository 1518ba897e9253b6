"""tooltoken in LangChain: a retriever over a tooltoken index, tooltoken tools as LangChain tools,
and the agent as a LangChain chat model (with `bind_tools` and structured output).

    pip install 'tooltoken[langchain]'
    python examples/langchain_app.py --model smollm2-135m
"""

import argparse
import os
import tempfile

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from tooltoken.app.langchain import ChatTooltoken, TooltokenRetriever, to_langchain_tool
from tooltoken.tools import BM25Search, Document
from tooltoken.tools.calculator import calculator

DOCS = [
    Document("tolstoy", "War and Peace", "War and Peace is a novel by Leo Tolstoy, published in 1869."),
    Document("everest", "Mount Everest", "Mount Everest is Earth's highest mountain above sea level."),
]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=os.environ.get("TOOLTOKEN_MODEL"))
    p.add_argument("--max-tokens", type=int, default=48)
    args = p.parse_args()

    # 1. a retriever over a tooltoken SearchBackend, in an LCEL chain
    retriever = TooltokenRetriever(backend=BM25Search.build(DOCS, tempfile.mkdtemp() + "/idx"), k=1)
    llm = ChatTooltoken(model=args.model, max_tokens=args.max_tokens)
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer from this context only:\n{context}"),
        ("human", "{question}"),
    ])
    context = retriever | (lambda docs: "\n".join(d.page_content for d in docs))
    chain = {"context": context, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    print("retrieved:", [d.id for d in retriever.invoke("Who wrote War and Peace?")])
    print("chain answer:", chain.invoke("Who wrote War and Peace?").strip()[:200])

    # 2. a tooltoken tool as a LangChain tool, bound to the chat model: the call comes back to us
    calc = to_langchain_tool(calculator)
    msg = llm.bind_tools([calc], tool_choice="calculator").invoke("What is 1234 * 5678?")
    call = msg.tool_calls[0]
    print("tool call:", call["name"], call["args"], "->", calc.invoke(call).content)


if __name__ == "__main__":
    main()
