"""Detector profiles get their own narrow table, one row per (subject, slot).

``anomaly_state`` held each subject's hour-of-week profile (and the slots after it: the
temperature fit, the open drop's evidence) as three arrays of 173 values, so saving the
state after a batch rewrote about 4 KB per subject (out of line, TOASTed) even when the
batch touched one hour of the week. A stream worker saves after every micro-batch, and
that rewrite was as costly as writing the readings. Now the profile lives in
``anomaly_profile`` (subject_type, subject_id, how, level, spread, weight), and a batch
upserts only the slots it changed; ``anomaly_state`` keeps one narrow row of running
values per subject.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE anomaly_profile (
            subject_type text NOT NULL,
            subject_id text NOT NULL,
            how smallint NOT NULL,
            level double precision,
            spread double precision,
            weight double precision,
            PRIMARY KEY (subject_type, subject_id, how)
        );
        INSERT INTO anomaly_profile (subject_type, subject_id, how, level, spread, weight)
        SELECT s.subject_type, s.subject_id, (i - 1)::smallint, s.level[i], s.spread[i],
               s.weight[i]
        FROM anomaly_state s, generate_subscripts(s.level, 1) AS i
        WHERE s.level IS NOT NULL;
        ALTER TABLE anomaly_state DROP COLUMN level, DROP COLUMN spread, DROP COLUMN weight;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE anomaly_state ADD COLUMN level double precision[],
            ADD COLUMN spread double precision[], ADD COLUMN weight double precision[];
        UPDATE anomaly_state s SET level = p.level, spread = p.spread, weight = p.weight
        FROM (
            SELECT subject_type, subject_id, array_agg(level ORDER BY how) AS level,
                   array_agg(spread ORDER BY how) AS spread,
                   array_agg(weight ORDER BY how) AS weight
            FROM anomaly_profile GROUP BY subject_type, subject_id
        ) p
        WHERE p.subject_type = s.subject_type AND p.subject_id = s.subject_id;
        DROP TABLE anomaly_profile;
        """
    )
