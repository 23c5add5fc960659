"""A pytest plugin that runs each module's tests in reverse order.

``pytest -p support.reverse_order ...`` finds tests that pass only after an earlier
test of their module ran: mutmut runs each mutant against a subset of the tests, and
such a test would fail there on any mutant and count it killed (docs/guides/testing.md).
A test that fails only in reverse order may also be one that a later test's leftovers
break; run it alone to tell the two apart.
"""

from __future__ import annotations

from itertools import groupby

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ordered: list[pytest.Item] = []
    for _, module in groupby(items, key=lambda item: item.nodeid.split("::")[0]):
        ordered.extend(reversed(list(module)))
    items[:] = ordered
