"""Detector state tables leave room on each page for their own next version.

A stream worker rewrites every meter's running values (``anomaly_state``) and a few
profile slots (``anomaly_profile``) after every micro-batch. With full pages each of
those updates put the new version on another page and a new entry in the primary key
(the stream harness of 2,000 meters: 13K of 78K state updates and 0.5K of 60K slot
updates were heap-only), and the tables bloated to many times their live size between
autovacuum runs. With free room on the page PostgreSQL keeps the new version next to the
old one (a HOT update: no index entry) and prunes the old ones as it goes; a lower
autovacuum threshold keeps the dead versions few.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = {"anomaly_state": 50, "anomaly_profile": 70}


def upgrade() -> None:
    for table, fill in TABLES.items():
        op.execute(
            f"ALTER TABLE {table} SET (fillfactor = {fill},"
            " autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_cost_delay = 0)"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET (fillfactor, autovacuum_vacuum_scale_factor,"
            " autovacuum_vacuum_cost_delay)"
        )
