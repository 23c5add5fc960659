"""``metrify serve``: the REST API and the web dashboard under uvicorn (uvloop, httptools).

FastAPI and the server load only when this command runs; this module is the one place
that knows the server. One server, not a choice of two: granian measured the same
requests/s on every route (``bench/results/asgi-servers.md``) for more than twice the
installed weight, so it and the ``--server`` option that chose between them are gone.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.markup import escape

from metrify.cli.apps import app
from metrify.cli.common import UserError, console, err, friendly, load_settings

__all__ = ["serve_cmd"]


@app.command("serve")
@friendly
def serve_cmd(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(help="worker processes (one per CPU core serves the most)")
    ] = 1,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs) and the dashboard at /.

    The server is uvicorn: the former --server option (granian or uvicorn) is gone.
    """
    from metrify.api.auth.tokens import resolve_secret
    from metrify.ops.logging import configure
    from metrify.stores import database

    if workers < 1 or not 0 < port < 65536:
        raise UserError("--workers must be >= 1 and --port within 1..65535")
    settings = load_settings()
    configure(settings.log_level)
    # Fail here, once, with one line: bad key material, unreachable database. The line
    # is never wrapped: it names a file whose path may be longer than the terminal.
    try:
        resolve_secret(settings.api, settings.home)
    except (ValueError, OSError) as exc:
        err.print(
            f"[red]error:[/red] JWT signing key: {escape(str(exc))}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2) from None
    database.connect(settings).close()  # migrates to head on first use
    os.environ["METRIFY_HOME"] = str(settings.home)
    url = database.database_url(settings)
    os.environ["METRIFY_DATABASE_URL"] = url  # workers reuse the (embedded) server
    console.print(f"serving on http://{host}:{port} ({workers} uvicorn worker(s))")
    import uvicorn

    from metrify.ops import exposition

    # Several workers share their metrics through files, so that one scrape of /metrics
    # reports all of them; the directory must be in the environment before they start.
    with exposition.sharing(workers):
        uvicorn.run(
            "metrify.web.serve:app",
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            loop="uvloop",
            http="httptools",
            proxy_headers=False,
        )
