"""The interfaces: consumers of the event stream that nothing else in tooltoken imports.

    tooltoken.app.cli         the `tooltoken` command (chat, ask, run, serve, index, models, config)
    tooltoken.app.server      an OpenAI-compatible HTTP server over an Agent (`create_app`, `serve`)
    tooltoken.app.langchain   LangChain adapters (`ChatTooltoken`, `TooltokenRetriever`, tools both ways)

Each is imported on its own (`from tooltoken.app.server import create_app`): importing this
package loads none of them, so an interface's optional dependencies are needed only by its users.
"""

__all__: list[str] = []
