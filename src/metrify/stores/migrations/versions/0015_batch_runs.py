"""The batch jobs' run log: one row per run of one job over one data interval.

``metrify batch run`` and the Airflow DAG run the same jobs (aggregates, lake
compaction, dbt build, the daily anomaly model, the quality report) per data interval,
a UTC day. Each run of a job over an interval leaves a row here: ``running`` when it
starts (committed at once, so a crash leaves it visible), then ``ok``, ``failed`` (with
the error) or ``skipped`` (with why) and its counts when it ends. Re-runs add rows,
never replace them, so the log shows every attempt; ``--skip-done`` asks it whether an
interval has an ``ok`` run already.

The app's role may read, add and finish runs (SELECT, INSERT, UPDATE), not delete
them: the log is a record. The grant is written here as well as coming from the
default privileges of migration 0010, since those apply only to tables the role that
ran 0010 creates.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE batch_runs (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            job text NOT NULL,
            interval_start timestamptz NOT NULL,
            interval_end timestamptz NOT NULL,
            status text NOT NULL
                CHECK (status IN ('running', 'ok', 'failed', 'skipped')),
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            rows bigint,
            details jsonb,
            error text,
            runner text,
            CHECK (interval_end > interval_start),
            CHECK ((status = 'running') = (finished_at IS NULL))
        );
        -- "has this job an ok run of this interval?" and the newest runs first
        CREATE INDEX batch_runs_job_interval ON batch_runs (job, interval_start, started_at);
        REVOKE ALL ON batch_runs FROM metrify_app;
        GRANT SELECT, INSERT, UPDATE ON batch_runs TO metrify_app;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE batch_runs")
