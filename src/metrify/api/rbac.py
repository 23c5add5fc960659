"""Roles, permissions and region scope: the one table that says who may do what.

Every route declares the permission it needs through :func:`metrify.api.deps.require`;
nothing else in the API decides access. Region scope is a second, orthogonal check:
a principal with regions sees only meters whose ``meters.region`` is one of them.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # users, keys, settings, and everything else
    OPERATOR = "operator"  # ingest, edit readings, fix reference data, acknowledge anomalies
    ANALYST = "analyst"  # read everything, export
    VIEWER = "viewer"  # read aggregates only
    INGEST = "ingest"  # write data only, read nothing


class Permission(StrEnum):
    INGEST = "ingest"  # POST readings, grid, weather
    READ_REFERENCE = "read:reference"  # meters, nodes, stations
    WRITE_REFERENCE = "write:reference"
    READ_AGGREGATES = "read:aggregates"  # 15m/1h/1d, latest, quality, fleet, grid, weather
    READ_RAW = "read:raw"  # raw interval readings
    EXPORT = "export"  # bulk CSV / Parquet download
    READ_QUARANTINE = "read:quarantine"
    EDIT_READINGS = "edit:readings"
    READ_ANOMALIES = "read:anomalies"
    ACK_ANOMALIES = "ack:anomalies"
    ADMIN_USERS = "admin:users"  # users and API keys
    READ_AUDIT = "read:audit"
    SELF = "self"  # who am I (any authenticated principal)


_READ_ALL = {
    Permission.READ_REFERENCE,
    Permission.READ_AGGREGATES,
    Permission.READ_RAW,
    Permission.READ_QUARANTINE,
    Permission.READ_ANOMALIES,
    Permission.SELF,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.OPERATOR: frozenset(
        _READ_ALL
        | {
            Permission.INGEST,
            Permission.WRITE_REFERENCE,
            Permission.EDIT_READINGS,
            Permission.ACK_ANOMALIES,
        }
    ),
    Role.ANALYST: frozenset(_READ_ALL | {Permission.EXPORT}),
    Role.VIEWER: frozenset(
        {Permission.READ_REFERENCE, Permission.READ_AGGREGATES, Permission.SELF}
    ),
    Role.INGEST: frozenset({Permission.INGEST, Permission.SELF}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def parse_regions(values: list[str] | None) -> tuple[str, ...] | None:
    """None = every region; otherwise the tuple of allowed regions, EMPTY for no region.

    Only ``None`` (a NULL ``regions`` column, or the field left out) is unscoped. A list
    with no region in it must never widen into "every region": it fails closed and sees
    nothing. The admin routes and the CLI refuse to store one (:mod:`metrify.api.users`).
    """
    if values is None:
        return None
    return tuple(sorted({v.strip() for v in values if v and v.strip()}))
