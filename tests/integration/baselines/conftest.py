"""The running API fixture of the API tests, for the baselines' routes."""

from integration.api.conftest import api

__all__ = ["api"]
