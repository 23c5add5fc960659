"""How the ``metrify`` entry point ends the process: the exit status of each way a
command ends, every exit handler run and every byte written, and a thread still at
work waited for (the fast exit skips only the interpreter's teardown)."""

from __future__ import annotations

import subprocess
import sys


def _run(prelude: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``metrify argv`` through :func:`metrify.cli.main` after ``prelude``, in a fresh
    interpreter (the entry point ends the process it runs in)."""
    script = (
        "import sys\n"
        f"{prelude}\n"
        f"sys.argv = ['metrify', *{list(argv)!r}]\n"
        "from metrify.cli import main\n"
        "main()\n"
        "print('main returned')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )


def test_a_finished_command_exits_zero_with_all_its_output() -> None:
    done = _run("", "--help")
    assert done.returncode == 0
    assert "Usage" in done.stdout and "ingest" in done.stdout
    assert "main returned" not in done.stdout  # the process ended in main


def test_usage_errors_keep_their_status() -> None:
    done = _run("", "no-such-command")
    assert done.returncode == 2
    assert "No such command" in done.stderr


def test_exit_handlers_run_and_their_output_is_flushed() -> None:
    # what the embedded PostgreSQL's stop and the tracer's last export rely on
    prelude = "import atexit\natexit.register(lambda: sys.stdout.write('handler ran\\n'))\n"
    done = _run(prelude, "--help")
    assert done.returncode == 0
    assert done.stdout.rstrip().endswith("handler ran")


def test_a_thread_still_working_is_waited_for() -> None:
    prelude = (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.5), print('late work done',"
        " flush=True))).start()\n"
    )
    done = _run(prelude, "--help")
    assert done.returncode == 0
    assert "late work done" in done.stdout


def test_a_message_exit_prints_it_and_exits_one() -> None:
    prelude = (
        "import metrify.cli as cli\n"
        "def fail(*a, **k):\n"
        "    raise SystemExit('stopped: the reason')\n"
        "cli.load_commands = lambda args: fail\n"
    )
    done = _run(prelude, "--help")
    assert done.returncode == 1
    assert "stopped: the reason" in done.stderr
