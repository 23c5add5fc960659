"""Quarantine keeps one row per distinct bad input, however often it is re-sent.

Loading the same file again must change nothing (the idempotency promise), yet every
re-send of a file with bad lines added another copy of each to ``quarantine``. A row now
carries a fingerprint of what it is (kind, source, line, reason, raw payload), unique, and
a re-send of the same input counts up ``times_seen`` and sets ``last_received_at`` instead
of adding a row: nothing is lost (the repeat is recorded) and nothing is doubled.

Copies already stored are folded into their oldest row, with their number and the newest
arrival kept.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: what makes two quarantined rows the same input (unit separators between the fields)
FINGERPRINT = (
    "md5(kind || chr(31) || source || chr(31) || coalesce(line::text, '')"
    " || chr(31) || reason || chr(31) || raw)::uuid"
)


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE quarantine
            ADD COLUMN times_seen integer NOT NULL DEFAULT 1 CHECK (times_seen >= 1),
            ADD COLUMN last_received_at timestamptz,
            ADD COLUMN fingerprint uuid GENERATED ALWAYS AS ({FINGERPRINT}) STORED;
        WITH copies AS (
            SELECT fingerprint, min(id) AS keep, count(*) AS n, max(received_at) AS last
            FROM quarantine GROUP BY fingerprint HAVING count(*) > 1
        ), folded AS (
            UPDATE quarantine q SET times_seen = c.n, last_received_at = c.last
            FROM copies c WHERE q.id = c.keep
        )
        DELETE FROM quarantine q USING copies c
        WHERE q.fingerprint = c.fingerprint AND q.id <> c.keep;
        CREATE UNIQUE INDEX quarantine_fingerprint ON quarantine (fingerprint);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX quarantine_fingerprint;
        ALTER TABLE quarantine DROP COLUMN fingerprint, DROP COLUMN last_received_at,
            DROP COLUMN times_seen;
        """
    )
