"""Consumption patterns: one row per run, its meters, segments and clusters.

``metrify patterns run`` and the ``patterns`` batch job analyse a period of the 30-minute
aggregates (typical days, load factor, base load, peak time, peak share, clusters of
day shapes; :mod:`metrify.analytics.patterns`) and keep the result here, so the CLI,
the API and dashboards read it without recomputing a year of half-hours:

* ``pattern_runs``: the period, the zone of its local clock, the definitions used
  (peak hours, base-load percentile, night) and the clustering's choice of k with its
  scores and bootstrap stability;
* ``meter_patterns``: per meter, the figures, its tariff and region then, its cluster
  (-1: an unusual shape set aside), its mean unit-energy day shape and its typical days;
* ``segment_patterns``: the same for each segment's average household (``dim`` tariff,
  region or fleet; acorn when a households file was given);
* ``pattern_clusters``: each cluster's centre shape and size.

A run replaces an earlier run of the same period (the job is re-runnable); runs of
other periods stay, the newest answers by default. The app's role reads and writes all
four (the grant is written here too: migration 0010's default privileges cover only
tables created by the role that ran it).

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_FIGURES = """
    days integer NOT NULL,
    complete_days integer NOT NULL,
    mean_daily_kwh double precision,
    mean_kw double precision,
    peak_kw double precision,
    load_factor double precision,
    base_load_kw double precision,
    peak_time text,
    peak_share double precision,
    typical_days jsonb NOT NULL
"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE pattern_runs (
            run_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            period_start timestamptz NOT NULL,
            period_end timestamptz NOT NULL,
            tz text NOT NULL,
            definitions jsonb NOT NULL,
            clustering jsonb,
            meters integer NOT NULL,
            source text NOT NULL,
            computed_at timestamptz NOT NULL DEFAULT now(),
            CHECK (period_end > period_start)
        );
        CREATE INDEX pattern_runs_newest ON pattern_runs (computed_at DESC);
        CREATE TABLE meter_patterns (
            run_id bigint NOT NULL REFERENCES pattern_runs ON DELETE CASCADE,
            meter_id text NOT NULL,
            tariff text,
            region text,
            acorn text,
            cluster integer,
            shape jsonb,
            {_FIGURES},
            PRIMARY KEY (run_id, meter_id)
        );
        CREATE TABLE segment_patterns (
            run_id bigint NOT NULL REFERENCES pattern_runs ON DELETE CASCADE,
            dim text NOT NULL,
            key text NOT NULL,
            households integer NOT NULL,
            {_FIGURES},
            PRIMARY KEY (run_id, dim, key)
        );
        CREATE TABLE pattern_clusters (
            run_id bigint NOT NULL REFERENCES pattern_runs ON DELETE CASCADE,
            cluster integer NOT NULL,
            households integer NOT NULL,
            peak_time text NOT NULL,
            peak_share double precision NOT NULL,
            centre jsonb NOT NULL,
            PRIMARY KEY (run_id, cluster)
        );
        REVOKE ALL ON pattern_runs, meter_patterns, segment_patterns, pattern_clusters
            FROM metrify_app;
        GRANT SELECT, INSERT, UPDATE, DELETE
            ON pattern_runs, meter_patterns, segment_patterns, pattern_clusters TO metrify_app;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE pattern_clusters, segment_patterns, meter_patterns, pattern_runs")
