"""``metrify audit``: list the audit log (the group's default, or ``list``) and ``verify``
its hash chain.

``metrify audit`` was one listing command; it became a group when verification came, and
its options keep working without the ``list`` word so that scripts written for it do.
"""

from __future__ import annotations

import re
import sys
from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from metrify.cli.apps import audit_app
from metrify.cli.common import UserError, console, err, friendly, load_settings, progress_bar

__all__ = ["audit_default", "audit_list", "audit_verify"]

Actor = Annotated[str | None, typer.Option(help="only this actor")]
Action = Annotated[str | None, typer.Option(help="action, '*' wildcard")]
Limit = Annotated[int, typer.Option(help="rows")]
AsJsonLines = Annotated[bool, typer.Option("--json", help="print JSON lines")]


def _conn() -> Any:
    from metrify.stores import database

    return database.connect(load_settings())


def _list(actor: str | None, action: str | None, limit: int, as_json: bool) -> None:
    from rich.table import Table

    from metrify.stores import audit

    with _conn() as conn:
        rows = audit.newest(conn, audit.Filter(actor=actor, action=action), limit=limit)
    if as_json:
        for r in rows:
            sys.stdout.write(orjson.dumps(r).decode() + "\n")
        return
    table = Table()
    for col in ("at", "actor", "action", "target", "outcome", "client"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            f"{r['at']:%Y-%m-%d %H:%M:%S}",
            r["actor"],
            r["action"],
            r["target"] or "",
            r["outcome"],
            r["client"] or "",
        )
    console.print(table)


@audit_app.callback(invoke_without_command=True)
@friendly
def audit_default(
    ctx: typer.Context,
    actor: Actor = None,
    action: Action = None,
    limit: Limit = 50,
    as_json: AsJsonLines = False,
) -> None:
    """The audit log: without a command, its newest rows (oldest first), as ``list``."""
    if ctx.invoked_subcommand is None:
        _list(actor, action, limit, as_json)


@audit_app.command("list")
@friendly
def audit_list(
    actor: Actor = None,
    action: Action = None,
    limit: Limit = 50,
    as_json: AsJsonLines = False,
) -> None:
    """Show the newest audit log rows (oldest first)."""
    _list(actor, action, limit, as_json)


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not (seq.isdigit() and int(seq) >= 1 and re.fullmatch(r"[0-9a-f]{64}", digest)):
        raise UserError(f"--anchor {text}: expected SEQ:HASH, e.g. 42:<64 hex digits>")
    return int(seq), digest


@audit_app.command("verify")
@friendly
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH a past verify printed, kept off the database"),
    ] = None,
) -> None:
    """Check the audit log's hash chain (exit 1 names the first bad row)."""
    from metrify.stores import audit_chain

    pinned = _anchor(anchor) if anchor is not None else None
    with _conn() as conn:
        total = audit_chain.count(conn)
        with progress_bar(total, unit="rows") as bar:
            task = bar.add_task("verifying", total=total)
            verdict = audit_chain.verify(
                conn, lambda done: bar.update(task, completed=done), anchor=pinned
            )
    if as_json:
        sys.stdout.write(orjson.dumps(verdict.as_dict()).decode() + "\n")
    elif verdict.broken is None:
        console.print(
            f"audit chain intact: {verdict.rows:,} rows, head seq {verdict.head_seq} "
            f"hash {verdict.head_hash}",
            highlight=False,
            soft_wrap=True,
        )
    else:
        err.print(
            f"[red]audit chain broken:[/red] {escape(verdict.broken.message)}", highlight=False
        )
    if not verdict.ok:
        raise typer.Exit(1)
