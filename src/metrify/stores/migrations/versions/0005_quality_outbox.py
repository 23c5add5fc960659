"""Meter-days whose quality scores are due for a refresh (an outbox).

A batch that changes readings marks their (meter, UTC day) here in the same transaction
as the write; ``quality_daily`` is recomputed from these marks later, at most every
``quality_refresh_s`` seconds per pipeline. A stream worker commits a batch every fraction
of a second, and recomputing whole meter-days each time cost more than the batch itself;
the marks make the deferral crash-safe (a mark is never lost with the process).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE quality_dirty (
            meter_id text NOT NULL,
            day date NOT NULL,
            PRIMARY KEY (meter_id, day)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE quality_dirty")
