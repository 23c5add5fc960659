"""Mutation testing of the core packages with mutmut: how many planted bugs the tests catch.

Not part of CI (it takes from minutes to hours); ``make mutation`` runs it. Each package
is mutated on its own, in its own copy of the tree under ``.metrify/mutation/<package>``,
against only the tests that exercise it: mutmut records which tests reach which function
and runs just those per mutant, each mutant in a process forked from a fork server
(``process_isolation = "forkserver"``: forking straight from a process that has run
polars' thread pool deadlocks the child).

The tests that need PostgreSQL share one embedded server for the whole run:
``METRIFY_DATABASE_URL`` points at it, so each mutant's pytest session only creates (and
migrates) a fresh database on it instead of starting a server (tests/conftest.py).

Results go to ``bench/results/mutation.md`` (and each package's outcome, survivors by
mutmut's name, to ``bench/results/mutation/<package>.json``): per package the mutants tried, killed,
timed out, survived and untested, the kill rate, and every survivor as ``file:line``
with the changed line. Survivors judged equivalent (no test could tell them apart) are
listed in ``bench/mutation_equivalent.toml`` with a reason; the table shows the rate
both with and without them.

    .venv/bin/python bench/mutation.py [--packages quality,auth] [--max-mutants 400]
        [--seed 20] [--children 1]

``--max-mutants`` samples that many mutants per package (a fixed seed, so a rerun tries
the same ones while the code is unchanged); without it every mutant is tried.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".metrify" / "mutation"
RESULTS = ROOT / "bench" / "results" / "mutation.md"
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.toml"
#: each package's latest outcome, committed beside the table: the copies under WORK are
#: not (.metrify/ is ignored), and a run of one package must not drop the others' rows
OUTCOMES = ROOT / "bench" / "results" / "mutation"


@dataclass(frozen=True)
class Package:
    """One package under test: what is mutated and which tests may kill its mutants."""

    name: str
    mutate: tuple[str, ...]
    tests: tuple[str, ...]
    skip: tuple[str, ...] = ()
    database: bool = False
    #: tests that pass only after others of their module ran (mutmut runs subsets)
    deselect: tuple[str, ...] = ()


PACKAGES = {
    p.name: p
    for p in (
        Package("quality", ("src/metrify/quality/*",), ("tests/unit/quality",)),
        Package(
            "auth",
            ("src/metrify/api/auth/*",),
            (
                "tests/unit/api",
                "tests/integration/api/test_auth.py",
                "tests/integration/api/test_rbac.py",
                "tests/integration/api/test_accounts.py",
                "tests/integration/api/test_password_audit.py",
            ),
            database=True,
            # expects the audit row of an earlier test's disabled-user login ("dora")
            deselect=(
                "tests/integration/api/test_auth.py::test_audit_rows_for_each_action_without_secrets",
            ),
        ),
        Package(
            "worker",
            ("src/metrify/pipeline/worker.py",),
            ("tests/unit/pipeline", "tests/integration/kafka"),
            database=True,
            # these run workers as subprocesses of the project's .venv: the copy has no
            # .venv, and a subprocess would import the unmutated package anyway
            deselect=(
                "tests/integration/kafka/test_worker.py::test_sigkill_crashes_lose_and_duplicate_nothing",
                "tests/integration/kafka/test_worker.py::test_sigterm_commits_and_exits_zero",
            ),
        ),
        Package(
            "stores",
            ("src/metrify/stores/*",),
            # the API's tests that exercise accounts, refresh tokens, idempotency keys
            # and the async reads (tests/integration/stores covers the sync side); not
            # the RBAC matrix, the rate limits or the large-body runs (minutes per
            # mutant). Each of these modules was run in reverse order: only the audit
            # test depends on an earlier test (every other one passes alone).
            (
                "tests/unit/stores",
                "tests/integration/stores",
                *(
                    f"tests/integration/api/test_{name}.py"
                    for name in (
                        "accounts",
                        "auth",
                        "revocation",
                        "ingest",
                        "cache",
                        "bad_values",
                        "audit_big_numbers",
                        "password_audit",
                    )
                ),
                # the audit hash chain and the lake's per-day counts, through their CLI
                "tests/integration/cli/test_audit_verify.py",
                "tests/integration/cli/test_lake_verify.py",
            ),
            skip=("src/metrify/stores/migrations/*", "src/metrify/stores/embedded.py"),
            database=True,
            deselect=(
                # expects the audit row of an earlier test's disabled-user login ("dora")
                "tests/integration/api/test_auth.py::test_audit_rows_for_each_action_without_secrets",
            ),
        ),
    )
}

# mutmut's exit-code verdicts, grouped the way the table counts them
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "suspicious"}


@dataclass
class Survivor:
    name: str
    where: str
    before: str
    after: str
    equivalent: str | None = None


@dataclass
class Outcome:
    package: Package
    generated: int
    tried: int
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[Survivor] = field(default_factory=list)
    seconds: float = 0.0
    #: the kill rate of the first run on this sample, before tests were added
    baseline: str | None = None

    @property
    def killed(self) -> int:
        return sum(n for status, n in self.counts.items() if status in KILLED)

    @property
    def equivalent(self) -> int:
        return sum(1 for s in self.survivors if s.equivalent)

    def rate(self, *, without_equivalent: bool = False) -> float:
        judged = self.tried - (self.equivalent if without_equivalent else 0)
        return 100.0 * self.killed / judged if judged else 0.0


def _toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def prepare(package: Package) -> Path:
    """A fresh copy of src/, tests/ and pyproject.toml with this package's mutmut table."""
    work = WORK / package.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src", work / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    table = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["src"]',
            f"only_mutate = {_toml_list(package.mutate)}",
            f"do_not_mutate = {_toml_list(package.skip)}",
            f"pytest_add_cli_args_test_selection = {_toml_list(package.tests)}",
            "pytest_add_cli_args = "
            + _toml_list(
                ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
                + [arg for test in package.deselect for arg in ("--deselect", test)]
            ),
            'process_isolation = "forkserver"',
            'also_copy = ["conftest.py"]',
            "use_git_change_detection = false",
            "",
        ]
    )
    (work / "conftest.py").write_text(ORDER)
    (work / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + table)
    return work


# A root conftest in the copy only: unit tests first, so the cheap test that kills a
# mutant runs before the slow ones (mutmut stops a mutant's run at its first failure).
ORDER = """
def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: not item.nodeid.startswith("tests/unit/"))
"""

GENERATE = """
import mutmut.__main__ as m
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths
m.set_mutant_under_test("mutant_generation")
m.makedirs("mutants", exist_ok=True)
copy_src_dir()
copy_also_copy_files()
setup_source_paths()
m.store_lines_covered_by_tests()
m.create_mutants(1)
"""


def _metas(work: Path) -> Iterator[tuple[Path, dict[str, int | None]]]:
    """(source path relative to the copy, mutant name -> exit code) per mutated file."""
    for meta in sorted((work / "mutants" / "src").rglob("*.py.meta")):
        source = meta.relative_to(work / "mutants").with_suffix("")
        yield source, json.loads(meta.read_text())["exit_code_by_key"]


def generate(work: Path) -> list[str]:
    subprocess.run(
        [sys.executable, "-c", GENERATE], cwd=work, check=True, stdout=subprocess.DEVNULL
    )
    return sorted(name for _, codes in _metas(work) for name in codes)


def run_mutmut(work: Path, names: list[str] | None, children: int, env: dict[str, str]) -> None:
    log = work / "mutmut.log"
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children)]
    with log.open("w") as out:
        done = subprocess.run(command + (names or []), cwd=work, env=env, stdout=out, stderr=out)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut failed in {work} (exit {done.returncode}):\n{tail}")


def _function_span(source: Path, function: str, klass: str | None) -> tuple[int, int]:
    tree = ast.parse(source.read_text())
    scope: list[ast.stmt] = tree.body
    if klass:
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and node.name == klass:
                scope = node.body
    for node in scope:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            return node.lineno, node.end_lineno or node.lineno
    return 1, len(source.read_text().splitlines())


def locate(work: Path, source: Path, name: str) -> Survivor:
    """file:line of a mutant and its changed line, from mutmut's diff of the function."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.utils.format_utils import orig_function_and_class_names_from_key

    diff = get_diff_for_mutant(name, path=source)
    changed = [ln for ln in diff.splitlines() if not ln.startswith(("---", "+++"))]
    removed = [ln[1:] for ln in changed if ln.startswith("-")]
    added = [ln[1:] for ln in changed if ln.startswith("+")]
    function, klass = orig_function_and_class_names_from_key(name)
    first, last = _function_span(work / source, function.rpartition(".")[-1], klass)
    lines = (work / source).read_text().splitlines()
    line = first
    if removed:
        wanted = removed[0].strip()
        line = next((n for n in range(first, last + 1) if lines[n - 1].strip() == wanted), first)
    before = removed[0].strip() if removed else ""
    after = added[0].strip() if added else ""
    return Survivor(name, f"{source.relative_to('src')}:{line}", before, after)


@contextmanager
def _inside(work: Path) -> Iterator[None]:
    from mutmut.configuration import reset_config

    here = Path.cwd()
    os.chdir(work)
    reset_config()
    try:
        yield
    finally:
        os.chdir(here)
        reset_config()


def collect(package: Package, work: Path, tried: list[str], generated: int) -> Outcome:
    from mutmut.stats import status_by_exit_code

    wanted = set(tried)
    outcome = Outcome(package, generated, len(tried))
    with _inside(work):
        for source, codes in _metas(work):
            for name, code in sorted(codes.items()):
                if name not in wanted:
                    continue
                status = status_by_exit_code[code]
                outcome.counts[status] = outcome.counts.get(status, 0) + 1
                if status in KILLED:
                    continue
                outcome.survivors.append(locate(work, source, name))
    return outcome


def _equivalents() -> dict[tuple[str, str], str]:
    """(file, mutated line) -> why no test can tell that mutant from the code."""
    if not EQUIVALENT.exists():
        return {}
    entries = tomllib.loads(EQUIVALENT.read_text()).get("equivalent", [])
    return {(e["file"], e["mutated"]): e["reason"] for e in entries}


@contextmanager
def database_server(needed: bool) -> Iterator[str]:
    """One PostgreSQL server for every mutant: the given one or an embedded one."""
    given = os.environ.get("METRIFY_DATABASE_URL")
    if given or not needed:
        yield given or ""
        return
    from metrify.stores import embedded

    home = Path(tempfile.mkdtemp(prefix="mm", dir="/tmp"))
    try:
        yield embedded.start(home, keep_running=False)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def _drop_leftovers(url: str) -> None:
    """Databases of mutant sessions that were killed before their teardown ran."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'metrify_test_%'"
        ).fetchall()
        for (name,) in rows:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rate_of(data: dict[str, Any]) -> str:
    killed = sum(n for status, n in data["counts"].items() if status in KILLED)
    return f"{100.0 * killed / data['tried']:.1f}% ({killed}/{data['tried']})"


def save(outcome: Outcome, command: str) -> None:
    """Keep a package's outcome beside its copy, so runs of single packages add up."""
    data = {
        "command": command,
        "finished": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "generated": outcome.generated,
        "tried": outcome.tried,
        "counts": outcome.counts,
        "seconds": outcome.seconds,
        "baseline": outcome.baseline,
        "survivors": [[s.name, s.where, s.before, s.after] for s in outcome.survivors],
    }
    OUTCOMES.mkdir(parents=True, exist_ok=True)
    (OUTCOMES / f"{outcome.package.name}.json").write_text(json.dumps(data, indent=1) + "\n")


def load_all() -> list[tuple[Outcome, str, str]]:
    """Every package's latest outcome (with its command and finish time), in table order."""
    equivalent = _equivalents()
    found = []
    for package in PACKAGES.values():
        path = OUTCOMES / f"{package.name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        outcome = Outcome(package, data["generated"], data["tried"], data["counts"])
        outcome.seconds = data["seconds"]
        outcome.baseline = data.get("baseline")
        for name, where, before, after in data["survivors"]:
            why = equivalent.get((where.split(":")[0], after))
            outcome.survivors.append(Survivor(name, where, before, after, why))
        found.append((outcome, data["command"], data["finished"]))
    return found


def _previous(package: Package) -> dict[str, Any]:
    path = OUTCOMES / f"{package.name}.json"
    if not path.exists():
        raise SystemExit(f"{package.name}: no earlier run to take the survivors of")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def run_package(
    package: Package,
    *,
    max_mutants: int | None,
    seed: int,
    children: int,
    env: dict[str, str],
    survivors_only: bool = False,
) -> Outcome:
    """Mutate and test one package; ``survivors_only`` tries again only the mutants that
    the last run left alive (tests were added since: a killed mutant stays killed)."""
    started = time.monotonic()
    previous = _previous(package) if survivors_only else None
    work = prepare(package)
    names = generate(work)
    tried = names
    if previous is not None:
        tried = sorted(s[0] for s in previous["survivors"])
        gone = set(tried) - set(names)
        if gone:
            raise SystemExit(f"{package.name}: the code changed, {len(gone)} survivors are gone")
    elif max_mutants is not None and len(names) > max_mutants:
        tried = sorted(random.Random(f"{seed}:{package.name}").sample(names, max_mutants))
    print(f"{package.name}: {len(names)} mutants, trying {len(tried)}", flush=True)
    if tried:
        run_mutmut(work, tried if tried is not names else None, children, env)
    if package.database:
        _drop_leftovers(env["METRIFY_DATABASE_URL"])
    outcome = collect(package, work, tried, len(names))
    if previous is not None:
        for status, n in previous["counts"].items():
            if status in KILLED:
                outcome.counts[status] = outcome.counts.get(status, 0) + n
        outcome.tried = previous["tried"]
        outcome.baseline = previous.get("baseline") or _rate_of(previous)
        outcome.seconds = previous["seconds"]
    outcome.seconds += time.monotonic() - started
    print(
        f"{package.name}: killed {outcome.killed}/{outcome.tried} = {outcome.rate():.1f}% "
        f"in {outcome.seconds / 60:.1f} min",
        flush=True,
    )
    return outcome


def _cell(text: str) -> str:
    text = text.replace("|", "\\|").replace("`", "'")
    return text if len(text) <= 90 else text[:87] + "..."


def render(found: list[tuple[Outcome, str, str]]) -> str:
    lines = [
        "# Mutation testing (mutmut)",
        "",
        "Written by bench/mutation.py (`make mutation`; not part of CI); each package's",
        "section names the command and time of its latest run.",
        "Kill rate = (killed + timed out) / mutants tried; 'untested' mutants (no test",
        "reaches the function) count as not killed. 'Without equivalent' leaves out the",
        "survivors that bench/mutation_equivalent.toml explains as equivalent. 'Before new",
        "tests' is the first run's rate on the same mutants, when a later run",
        "(`--survivors-only`) tried its survivors again against tests added since; minutes",
        "add up both runs.",
        "",
        "| package | mutants | tried | killed | timeout | survived | untested | kill rate "
        "| without equivalent | before new tests | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o, _, _ in found:
        c = o.counts
        survived = sum(n for s, n in c.items() if s in SURVIVED)
        untested = c.get("no tests", 0) + c.get("not checked", 0)
        lines.append(
            f"| {o.package.name} | {o.generated} | {o.tried} | {o.killed - c.get('timeout', 0)} "
            f"| {c.get('timeout', 0)} | {survived} | {untested} | {o.rate():.1f}% "
            f"| {o.rate(without_equivalent=True):.1f}% | {o.baseline or '-'} "
            f"| {o.seconds / 60:.1f} |"
        )
    for o, command, finished in found:
        p = o.package
        lines += [
            "",
            f"## {p.name}",
            "",
            f"Run by `{command}`, finished {finished}.",
            f"Mutated: {', '.join(p.mutate)}"
            + (f" (not {', '.join(p.skip)})" if p.skip else "")
            + f". Tests: {', '.join(p.tests)}.",
            "",
        ]
        if o.tried < o.generated:
            lines += [f"A sample of {o.tried} of the {o.generated} mutants.", ""]
        if not o.survivors:
            lines.append("No survivors.")
            continue
        lines += ["| where | original | mutant | note |", "|---|---|---|---|"]
        for s in sorted(o.survivors, key=lambda s: _sort_key(s.where)):
            note = f"equivalent: {s.equivalent}" if s.equivalent else ""
            lines.append(
                f"| {s.where} | `{_cell(s.before)}` | `{_cell(s.after)}` | {_cell(note)} |"
            )
    return "\n".join(lines) + "\n"


def _sort_key(where: str) -> tuple[str, int]:
    path, _, line = where.rpartition(":")
    return path, int(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default=",".join(PACKAGES))
    parser.add_argument("--max-mutants", type=int, default=None)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--children", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--survivors-only",
        action="store_true",
        help="try again only the last run's surviving mutants (after adding tests)",
    )
    parser.add_argument(
        "--report", action="store_true", help="only rewrite the table from the last runs"
    )
    args = parser.parse_args(argv)
    if args.report:
        args.output.write_text(render(load_all()))
        print(f"wrote {args.output}")
        return
    chosen = [p.strip() for p in args.packages.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PACKAGES]
    if unknown:
        parser.error(f"unknown package(s) {', '.join(unknown)}; known: {', '.join(PACKAGES)}")
    command = "python bench/mutation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with database_server(any(PACKAGES[n].database for n in chosen)) as url:
        env = {**os.environ, "METRIFY_DATABASE_URL": url, "PYTHONPATH": ""}
        for name in chosen:
            outcome = run_package(
                PACKAGES[name],
                max_mutants=args.max_mutants,
                seed=args.seed,
                children=args.children,
                env=env,
                survivors_only=args.survivors_only,
            )
            save(outcome, command.strip())
            args.output.write_text(render(load_all()))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
