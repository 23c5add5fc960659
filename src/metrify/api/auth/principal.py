"""Who is calling: a user (JWT access token) or a machine (API key), with a role.

How a request's credentials become a principal is :mod:`metrify.api.credentials`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from metrify.api.rbac import Permission, Role, allowed


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "key"]
    id: int
    name: str
    role: Role
    regions: tuple[str, ...] | None

    @property
    def actor(self) -> str:
        """How audit rows and rate limits name this principal (never a secret)."""
        return self.name if self.kind == "user" else f"key:{self.name}"

    def can(self, permission: Permission) -> bool:
        return allowed(self.role, permission)
