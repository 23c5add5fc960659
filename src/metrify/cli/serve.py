"""``metrify serve``: the REST API and the web dashboard under uvicorn (uvloop, httptools).

FastAPI and the server load only when this command runs; this module is the one place
that knows the server. One server, not a choice of two: granian measured the same
requests/s on every route (``bench/results/asgi-servers.md``) for more than twice the
installed weight, so it and the ``--server`` option that chose between them are gone.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
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
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (chain) to serve HTTPS with; needs --ssl-keyfile"),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="PEM private key of --ssl-certfile")
    ] = None,
    shutdown_timeout: Annotated[
        int,
        typer.Option(
            help=(
                "seconds in-flight requests get to finish after SIGTERM before their "
                "connections are closed (keep it below the orchestrator's grace period)"
            )
        ),
    ] = 30,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs) and the dashboard at /.

    The server is uvicorn: the former --server option (granian or uvicorn) is gone. On
    SIGTERM it stops accepting connections and lets in-flight requests finish (up to
    --shutdown-timeout) before it exits, so a rolling update drops no request.
    """
    from metrify.api.auth.tokens import resolve_secret
    from metrify.ops.logging import configure
    from metrify.stores import database

    if workers < 1 or not 0 < port < 65536:
        raise UserError("--workers must be >= 1 and --port within 1..65535")
    if shutdown_timeout < 0:
        raise UserError("--shutdown-timeout must be >= 0 seconds")
    _check_tls(ssl_certfile, ssl_keyfile)
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
    scheme = "https" if ssl_certfile else "http"
    console.print(f"serving on {scheme}://{host}:{port} ({workers} uvicorn worker(s))")
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
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            timeout_graceful_shutdown=shutdown_timeout,
        )


def _check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    """Both or neither, and a pair that loads: checked here, once, so that a wrong path
    or a key that does not match is one line and exit 2, not a traceback per worker."""
    if (certfile is None) != (keyfile is None):
        raise UserError("--ssl-certfile and --ssl-keyfile go together: give both or neither")
    if certfile is None or keyfile is None:
        return
    for option, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise UserError(f"{option} {path}: no such file")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise UserError(
            f"--ssl-certfile {certfile} / --ssl-keyfile {keyfile}: cannot load the pair ({exc})"
        ) from None
