#!/usr/bin/env python3
"""A small MCP server for the MCP client tests, built on the official Python SDK (mcp 1.x).

    python3 tests/mcp/fastmcp_server.py                      # stdio (default)
    python3 tests/mcp/fastmcp_server.py --http PORT          # streamable HTTP on http://127.0.0.1:PORT/mcp
    python3 tests/mcp/fastmcp_server.py --http PORT --token T
        # same, but every HTTP request must carry "Authorization: T" (else 401)

Tools:
    add(a, b)          -> structured {"result": a + b} (+ the text "a+b"); has an outputSchema
    shout(text)        -> text: text.upper() (plain text, no structured content)
    fail(reason)       -> isError: true, the text contains reason
    slow(seconds, marker?) -> sleeps; progress every 0.5 s when the call has a progressToken;
                          stops when the call is cancelled, and then writes the file `marker`
                          (when given) so a test sees the cancellation arrive
    whoami()           -> structured {"cwd", "secret" (MCP_TEST_SECRET or "unset"), "pid"}
    request_headers()  -> structured {"authorization", "user_agent", "x_headers"} of the HTTP
                          request carrying the call ("none"/{} over stdio)
    crash(code)        -> the process exits at once with that code (no reply): a dead server
"""

import argparse
import asyncio
import os
import sys

from mcp.server.fastmcp import Context, FastMCP

mcp = FastMCP("fastmcp-test-server", log_level="WARNING")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@mcp.tool(structured_output=False)
def shout(text: str) -> str:
    """Return the text in upper case."""
    return text.upper()


@mcp.tool(structured_output=False)
def fail(reason: str) -> str:
    """Always fails with the given reason."""
    raise RuntimeError(reason)


@mcp.tool(structured_output=False)
async def slow(seconds: float, ctx: Context, marker: str = "") -> str:
    """Sleep for the given number of seconds, reporting progress every 0.5 s."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        while True:
            elapsed = loop.time() - start
            if elapsed >= seconds:
                break
            # A cancelled call is interrupted here (anyio cancels the task).
            await asyncio.sleep(min(0.5, seconds - elapsed))
            await ctx.report_progress(min(loop.time() - start, seconds), seconds)
    except asyncio.CancelledError:
        if marker:
            with open(marker, "w") as f:
                f.write("cancelled")
        raise
    return f"slept {seconds} s"


@mcp.tool()
def whoami() -> dict[str, str]:
    """The server process's working directory, MCP_TEST_SECRET (or "unset") and pid."""
    return {
        "cwd": os.getcwd(),
        "secret": os.environ.get("MCP_TEST_SECRET", "unset"),
        "pid": str(os.getpid()),
    }


@mcp.tool()
def request_headers(ctx: Context) -> dict[str, str | dict[str, str]]:
    """Selected headers of the HTTP request that carried this call."""
    request = ctx.request_context.request
    headers = getattr(request, "headers", None)
    if headers is None:
        return {"authorization": "none", "user_agent": "none", "x_headers": {}}
    return {
        "authorization": headers.get("authorization", "none"),
        "user_agent": headers.get("user-agent", "none"),
        "x_headers": {k: v for k, v in headers.items() if k.lower().startswith("x-")},
    }


@mcp.tool(structured_output=False)
def crash(code: int = 3) -> str:
    """Exit the server process at once, without replying."""
    sys.stdout.flush()
    os._exit(code)


def require_bearer(app, token):
    """ASGI wrapper: 401 unless the request has "Authorization: <token>"."""
    expected = token.encode()

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", type=int, metavar="PORT",
                        help="serve streamable HTTP on 127.0.0.1:PORT at /mcp instead of stdio")
    parser.add_argument("--token", help="with --http: require the header Authorization: TOKEN")
    args = parser.parse_args()
    if args.http is None:
        mcp.run("stdio")
        return
    import uvicorn

    mcp.settings.host = "127.0.0.1"
    mcp.settings.port = args.http
    mcp.settings.streamable_http_path = "/mcp"
    app = mcp.streamable_http_app()
    if args.token:
        app = require_bearer(app, args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.http, log_level="warning")


if __name__ == "__main__":
    main()
