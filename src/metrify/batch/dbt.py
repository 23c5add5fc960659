"""Building the warehouse: the dbt project in ``transform/``, run in-process.

:func:`build` writes a dbt profile from Metrify's settings into a private temporary
folder (nobody hand-edits ``~/.dbt``), runs ``dbt build`` through dbt's programmatic
runner and returns each node's status. Secrets never reach that file: the profile names
them with ``env_var()`` and they are set in this process's environment only for the run.
The three targets:

``duckdb``     the embedded default: ``<home>/warehouse.duckdb``, over the lake (read with
               :meth:`metrify.stores.lake.Lake.arrow`) and the store's reference tables,
               both through the :mod:`metrify.stores.dbt_plugin` dbt-duckdb plugin;
``postgres``   the same models inside the store's PostgreSQL, over its tables;
``snowflake``  dbt-snowflake on the account in ``METRIFY_WAREHOUSE__SNOWFLAKE__*``, over
               landing tables staged from the S3 lake (``transform/macros/snowflake_stage.sql``).

dbt's own files (compiled SQL, ``manifest.json``, ``catalog.json``, logs) go under
``<home>/dbt/<target>``, never into the repository's ``transform/`` folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from metrify.settings import Settings
from metrify.stores import database

__all__ = [
    "TARGETS",
    "DbtError",
    "DbtResult",
    "NodeResult",
    "build",
    "docs",
    "profile",
    "project_dir",
]

TARGETS = ("duckdb", "postgres", "snowflake")
#: statuses of a node that did what it should (a test "pass", a model "success")
OK_STATUSES = frozenset({"success", "pass", "skipped", "warn"})

#: environment variables the generated profile reads its secrets from
_ENV_DATABASE = "METRIFY_DBT_DATABASE_URL"
_ENV_PG_PASSWORD = "METRIFY_DBT_PG_PASSWORD"
_ENV_SF_PASSWORD = "METRIFY_DBT_SNOWFLAKE_PASSWORD"
_ENV_SF_PASSPHRASE = "METRIFY_DBT_SNOWFLAKE_KEY_PASSPHRASE"


class DbtError(RuntimeError):
    """dbt could not run, or a model or test failed (message fit for a user).

    ``result`` holds every node's status when dbt got as far as running nodes."""

    def __init__(self, message: str, result: DbtResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class NodeResult:
    """One model, test, seed or snapshot of a run."""

    unique_id: str
    resource_type: str
    status: str
    message: str | None = None
    failures: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    @property
    def name(self) -> str:
        return self.unique_id.split(".", 2)[-1]


@dataclass(frozen=True)
class DbtResult:
    """What a dbt command did, node by node."""

    command: str
    target: str
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0
    target_path: Path | None = None

    @property
    def failures(self) -> list[NodeResult]:
        """The nodes that errored or whose test failed."""
        return [n for n in self.nodes if not n.ok]

    def counts(self) -> dict[str, int]:
        """How many nodes ended in each status."""
        out: dict[str, int] = {}
        for node in self.nodes:
            out[node.status] = out.get(node.status, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "target": self.target,
            "success": self.success,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "nodes": [
                {
                    "unique_id": n.unique_id,
                    "resource_type": n.resource_type,
                    "status": n.status,
                    "message": n.message,
                    "failures": n.failures,
                    "seconds": round(n.seconds, 3),
                }
                for n in self.nodes
            ],
        }


def project_dir() -> Path:
    """The dbt project: ``METRIFY_DBT_PROJECT_DIR``, else ``transform/`` of this checkout."""
    given = os.environ.get("METRIFY_DBT_PROJECT_DIR")
    if given:
        return Path(given)
    return Path(__file__).resolve().parents[3] / "transform"


def _work_dir(settings: Settings, target: str) -> Path:
    return (settings.home / "dbt" / target).resolve()


def _postgres_output(url: str, threads: int) -> tuple[dict[str, Any], dict[str, str]]:
    """A dbt-postgres output for a libpq URL, its password as an env var."""
    info = conninfo_to_dict(url)
    output: dict[str, Any] = {
        "type": "postgres",
        "host": info.get("host") or "localhost",
        "port": int(info.get("port") or 5432),
        "user": info.get("user") or "postgres",
        "password": "{{ env_var('" + _ENV_PG_PASSWORD + "', '') }}",
        "dbname": info.get("dbname") or "postgres",
        "schema": "public",
        "threads": threads,
    }
    if info.get("sslmode"):
        output["sslmode"] = info["sslmode"]
    return output, {_ENV_PG_PASSWORD: str(info.get("password") or "")}


def _snowflake_output(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    config = settings.warehouse.snowflake
    if not config.account or not config.user:
        raise DbtError(
            "the snowflake target needs METRIFY_WAREHOUSE__SNOWFLAKE__ACCOUNT and"
            " METRIFY_WAREHOUSE__SNOWFLAKE__USER"
        )
    output: dict[str, Any] = {
        "type": "snowflake",
        "account": config.account,
        "user": config.user,
        "database": config.database,
        "warehouse": config.warehouse,
        "schema": config.schema_,
        "threads": config.threads,
    }
    env: dict[str, str] = {}
    if config.role:
        output["role"] = config.role
    if config.authenticator:
        output["authenticator"] = config.authenticator
    if config.password is not None:
        output["password"] = "{{ env_var('" + _ENV_SF_PASSWORD + "') }}"
        env[_ENV_SF_PASSWORD] = config.password.get_secret_value()
    if config.private_key_path is not None:
        output["private_key_path"] = str(config.private_key_path)
    if config.private_key_passphrase is not None:
        output["private_key_passphrase"] = "{{ env_var('" + _ENV_SF_PASSPHRASE + "') }}"
        env[_ENV_SF_PASSPHRASE] = config.private_key_passphrase.get_secret_value()
    return output, env


def profile(settings: Settings, target: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The dbt ``profiles.yml`` content for one target, and the secret env vars it reads."""
    if target == "duckdb":
        path = settings.warehouse_path
        path.parent.mkdir(parents=True, exist_ok=True)
        output: dict[str, Any] = {
            "type": "duckdb",
            "path": str(path),
            "schema": "main",
            "threads": settings.warehouse.threads,
            # buckets are computed in explicit zones; the session zone must not leak in.
            # No model relies on row order: DuckDB then writes tables without keeping the
            # input order, which holds less in memory on the big aggregates.
            "settings": {
                "TimeZone": "UTC",
                "preserve_insertion_order": "false",
                **(
                    {"memory_limit": settings.warehouse.memory_limit.strip()}
                    if settings.warehouse.memory_limit
                    else {}
                ),
            },
            "plugins": [
                {
                    "module": "metrify.stores.dbt_plugin",
                    "alias": "metrify",
                    "config": {
                        "lake_url": settings.lake,
                        "database_url": "{{ env_var('" + _ENV_DATABASE + "') }}",
                    },
                }
            ],
        }
        env = {_ENV_DATABASE: database.database_url(settings)}
    elif target == "postgres":
        url = settings.warehouse.postgres_url
        output, env = _postgres_output(
            url.get_secret_value() if url is not None else database.owner_url(settings),
            settings.warehouse.threads,
        )
    elif target == "snowflake":
        output, env = _snowflake_output(settings)
    else:
        raise DbtError(f"unknown warehouse target {target!r}: expected one of {', '.join(TARGETS)}")
    return {"metrify": {"target": target, "outputs": {target: output}}}, env


def _target_vars(settings: Settings, target: str) -> dict[str, Any]:
    """Project vars that come from settings for one target: Snowflake's stage over the
    S3 lake (``transform/macros/snowflake_stage.sql`` loads the landing tables from it)."""
    if target != "snowflake":
        return {}
    config = settings.warehouse.snowflake
    out: dict[str, Any] = {}
    if config.stage:
        out["snowflake_stage"] = config.stage
        if settings.lake.startswith("s3://"):
            out["lake_url"] = settings.lake
        if config.storage_integration:
            out["snowflake_storage_integration"] = config.storage_integration
    return out


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set env vars for the duration of a run, then put the old values back."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: a node finished: (unique id, status)
Progress = Callable[[str, str], None]


def _callback(progress: Progress | None) -> list[Callable[[Any], None]]:
    if progress is None:
        return []

    def on_event(event: Any) -> None:
        if event.info.name == "NodeFinished":
            data = event.data
            progress(data.node_info.unique_id, data.run_result.status)

    return [on_event]


def _nodes(results: Any) -> list[NodeResult]:
    out = []
    for r in getattr(results, "results", None) or []:
        node = r.node
        out.append(
            NodeResult(
                unique_id=node.unique_id,
                resource_type=str(node.resource_type),
                status=str(r.status),
                message=r.message,
                failures=r.failures,
                seconds=float(r.execution_time or 0.0),
            )
        )
    return out


def _invoke(
    settings: Settings,
    command: list[str],
    *,
    target: str | None,
    vars: dict[str, Any] | None,
    progress: Progress | None,
) -> DbtResult:
    try:  # imported here: dbt is the optional `warehouse` extra
        from dbt.cli.main import dbtRunner
    except ImportError as exc:
        raise DbtError(f"dbt is not installed ({exc}): pip install 'metrify[warehouse]'") from None

    chosen = target or settings.warehouse.target
    content, env = profile(settings, chosen)
    work = _work_dir(settings, chosen)
    work.mkdir(parents=True, exist_ok=True)
    merged = {"fleet_timezone": settings.fleet_timezone, **_target_vars(settings, chosen)}
    merged.update(vars or {})
    env = {
        **env,
        # no phone-home and no version check: nothing may reach the network at run time
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="metrify-dbt-") as profiles_dir:
        profile_file = Path(profiles_dir) / "profiles.yml"
        # JSON is YAML: no YAML writer needed
        profile_file.write_text(json.dumps(content, indent=2))
        profile_file.chmod(0o600)
        args = [
            *command,
            "--project-dir",
            str(project_dir()),
            "--profiles-dir",
            profiles_dir,
            "--target",
            chosen,
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
            "--vars",
            json.dumps(merged, default=str),
            # nothing on stdout (the caller reports); the whole log goes to the file
            "--log-level",
            "none",
            "--log-level-file",
            "info",
        ]
        with _environment(env):
            try:
                outcome = dbtRunner(callbacks=_callback(progress)).invoke(args)
            finally:
                if chosen == "duckdb":
                    _release_duckdb()
    nodes = _nodes(outcome.result)
    result = DbtResult(
        command=command[0],
        target=chosen,
        success=bool(outcome.success),
        nodes=nodes,
        seconds=time.perf_counter() - started,
        target_path=work / "target",
    )
    if outcome.exception is not None:
        raise DbtError(f"dbt {command[0]} ({chosen}): {_first_line(outcome.exception)}", result)
    if not outcome.success:
        failed = result.failures
        names = ", ".join(f"{n.name} ({n.status})" for n in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        detail = f": {names}{more}" if failed else ""
        raise DbtError(
            f"dbt {command[0]} ({chosen}) failed on {len(failed)} node(s){detail};"
            f" see {work / 'logs' / 'dbt.log'}",
            result,
        )
    return result


def _release_duckdb() -> None:
    """Close the warehouse file dbt-duckdb keeps open in this process after a run.

    dbt-duckdb holds one connection per process for reuse; left open, it would keep the
    file locked against every reader (DuckDB allows one writer process, or readers)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()  # type: ignore[no-untyped-call]
    DuckDBConnectionManager.close_all_connections()  # type: ignore[no-untyped-call]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())[:500]


def build(
    settings: Settings,
    *,
    target: str | None = None,
    select: str | None = None,
    full_refresh: bool = False,
    vars: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> DbtResult:
    """Run ``dbt build`` (models, then their tests, in dependency order) on ``target``
    (default: ``settings.warehouse.target``). ``select`` is a dbt selector; a
    ``full_refresh`` rebuilds incremental models from scratch; ``vars`` overrides the
    project's vars. Raises :class:`DbtError` when dbt cannot run or any node fails."""
    command = ["build"]
    if select:
        command += ["--select", select]
    if full_refresh:
        command.append("--full-refresh")
    return _invoke(settings, command, target=target, vars=vars, progress=progress)


def docs(settings: Settings, *, target: str | None = None) -> Path:
    """Run ``dbt docs generate``; return the folder holding ``index.html`` and its
    ``manifest.json`` and ``catalog.json`` (open ``index.html`` through any static server)."""
    result = _invoke(
        settings, ["docs", "generate", "--static"], target=target, vars=None, progress=None
    )
    assert result.target_path is not None
    return result.target_path
