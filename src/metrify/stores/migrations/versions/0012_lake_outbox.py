"""The lake outbox: which days of which kind the lake may not yet hold as committed.

Every time-series write adds one row per (kind, UTC day) it touched, in the same
transaction as the rows, unchanged re-sends included. The entry is removed once the lake
holds those days as PostgreSQL committed them (the write's own lake append, or a day
rewritten from the store). A crash between the commit and the lake write leaves the
entry behind, and the next load, server start or ``metrify lake repair`` catches the day
up: the lake can lag, never stay behind.

Rows are never updated and carry no unique key, so concurrent writers of the same day
never wait on each other here.

Idempotency keys are now claimed inside the transaction that does the work, so a claim
never commits without its answer: the answerless claims earlier versions left behind
(a request killed mid-way kept its key "still being processed" for a day) are dropped.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE lake_outbox (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind text NOT NULL,
            day date NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX lake_outbox_kind_day ON lake_outbox (kind, day);
        DELETE FROM idempotency_keys WHERE status_code IS NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE lake_outbox")
