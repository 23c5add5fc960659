"""``metrify warehouse build|docs``: the dbt project of ``transform/`` on a target.

``build`` runs ``dbt build`` (models, then their tests) on the embedded DuckDB warehouse
by default, or on PostgreSQL or Snowflake; each finished model (and each failing test)
is one line on stderr while it runs, the summary goes to stdout. Exit 0 when every node
passed, 1 when a model or test failed, 2 on bad input or a missing install.
"""

from __future__ import annotations

import sys
from typing import Annotated

import orjson
import typer
from rich.markup import escape

from metrify.batch import dbt
from metrify.cli.apps import warehouse_app
from metrify.cli.common import UserError, console, err, friendly, load_settings

__all__ = ["warehouse_build", "warehouse_docs"]

TARGETS = ("duckdb", "postgres", "snowflake")

TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target", help="duckdb, postgres or snowflake (default: METRIFY_WAREHOUSE__TARGET)"
    ),
]


def _target(target: str | None) -> str | None:
    if target is not None and target not in TARGETS:
        raise UserError(f"--target {target}: expected one of {', '.join(TARGETS)}")
    return target


def _progress(unique_id: str, status: str) -> None:
    kind, _, name = unique_id.split(".", 2)
    if kind == "test" and status in ("pass", "skipped"):
        return  # tests that pass are counted in the summary, not listed
    mark = "" if status in ("success", "pass") else f" [red]{escape(status)}[/red]"
    err.print(f"{escape(kind)} {escape(name)}{mark}", highlight=False, soft_wrap=True)


@warehouse_app.command("build")
@friendly
def warehouse_build(
    target: TargetOption = None,
    select: Annotated[
        str | None, typer.Option("--select", help="dbt selector, e.g. marts or +fct_grid_loading")
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="rebuild incremental models from scratch")
    ] = False,
    dbt_vars: Annotated[
        str | None,
        typer.Option(
            "--vars",
            help='dbt vars as a JSON object, e.g. \'{"unknown_node_severity": "error"}\'',
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the result as one JSON object")] = False,
) -> None:
    """Build the warehouse: every model and its tests (dbt build)."""
    chosen = _target(target)
    parsed = _vars(dbt_vars)
    settings = load_settings()
    try:
        result = dbt.build(
            settings,
            target=chosen,
            select=select,
            full_refresh=full_refresh,
            vars=parsed,
            progress=_progress,
        )
    except dbt.DbtError as exc:
        if as_json and exc.result is not None:
            sys.stdout.write(orjson.dumps(exc.result.as_dict()).decode() + "\n")
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        sys.stdout.write(orjson.dumps(result.as_dict()).decode() + "\n")
        return
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.counts().items()))
    where = settings.warehouse_path if result.target == "duckdb" else result.target
    console.print(
        escape(f"warehouse built on {result.target} ({where}): {counts} in {result.seconds:.1f} s"),
        highlight=False,
    )


def _vars(text: str | None) -> dict[str, object] | None:
    """``--vars`` as a dict, or a one-line error (exit 2)."""
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise UserError(f"--vars {text}: expected a JSON object") from None
    if not isinstance(value, dict):
        raise UserError(f"--vars {text}: expected a JSON object")
    return value


@warehouse_app.command("docs")
@friendly
def warehouse_docs(target: TargetOption = None) -> None:
    """Generate the dbt docs site (models, columns, tests, lineage) and print where it is."""
    chosen = _target(target)
    settings = load_settings()
    try:
        folder = dbt.docs(settings, target=chosen)
    except dbt.DbtError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    # the bare path, unwrapped, so a script can open it
    sys.stdout.write(f"{folder / 'static_index.html'}\n")
