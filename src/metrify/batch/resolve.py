"""Finding a job's code, or another component's function a job calls, when it runs.

Jobs are named as ``module:function`` text (:mod:`metrify.batch.registry`) so the list
of jobs can be read without importing them; a component a job relies on that is not in
this build (a module or function missing) makes the job skip with a message naming it,
not fail the whole run at import time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from metrify.batch.context import JobSkipped

__all__ = ["resolve"]


def resolve(target: str) -> Callable[..., Any]:
    """The function ``module:function`` names; :class:`JobSkipped` if this build lacks
    it. An import error inside a module that is there is not hidden: it propagates."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # only the named module (or a parent package) missing means "not in this build"
        if exc.name is None or not module_name.startswith(exc.name):
            raise
        raise JobSkipped(f"{module_name} is not in this build") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise JobSkipped(f"{module_name}.{attr} is not in this build")
    return func  # type: ignore[no-any-return]
