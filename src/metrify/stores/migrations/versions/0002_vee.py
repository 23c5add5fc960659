"""VEE: per-meter voltage limit, daily quality scores.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE meters ADD COLUMN nominal_voltage_v double precision;

        CREATE TABLE quality_daily (
            meter_id text NOT NULL,
            day date NOT NULL,
            expected integer NOT NULL,
            present integer NOT NULL,
            valid integer NOT NULL,
            estimated integer NOT NULL,
            suspect integer NOT NULL,
            rejected integer NOT NULL,
            missing integer NOT NULL,
            completeness double precision NOT NULL,
            score double precision NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (meter_id, day)
        );
        CREATE INDEX quality_daily_day ON quality_daily (day, score);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE IF EXISTS quality_daily; ALTER TABLE meters DROP COLUMN nominal_voltage_v;"
    )
