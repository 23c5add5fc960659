"""Demand forecasts: one row per (subject, model, horizon, issue time, target interval).

A forecast is kept with the time it was issued and the quantiles of each target
interval (P10, P50, P90), so a dashboard can draw the band of the latest forecast and a
forecast can be scored later against what was measured (nothing is overwritten by a
newer issue: each issue is its own set of rows). Re-running the same issue replaces it
(:mod:`metrify.stores.forecasts`).

Subjects are named the way the energy aggregates name them: a meter, a grid node, a
region, a tariff segment or the fleet (key ``all``).

The app's role reads, writes and replaces forecasts. The grant is written here as well
as coming from the default privileges of migration 0010, since those apply only to
tables the role that ran 0010 creates.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE forecasts (
            subject_type text NOT NULL
                CHECK (subject_type IN ('meter', 'node', 'segment', 'region', 'fleet')),
            subject_id text NOT NULL,
            model text NOT NULL,
            horizon text NOT NULL CHECK (horizon IN ('day-ahead', 'intraday')),
            issued_at timestamptz NOT NULL,
            target_ts timestamptz NOT NULL,
            p10 double precision,
            p50 double precision NOT NULL,
            p90 double precision,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (subject_type, subject_id, model, horizon, issued_at, target_ts)
        );
        -- "the latest forecast of a subject for each target in a range": per target,
        -- the newest issue first, read from the index alone in target order
        CREATE INDEX forecasts_latest ON forecasts
            (subject_type, subject_id, horizon, model, target_ts, issued_at DESC);
        REVOKE ALL ON forecasts FROM metrify_app;
        GRANT SELECT, INSERT, UPDATE, DELETE ON forecasts TO metrify_app;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE forecasts")
