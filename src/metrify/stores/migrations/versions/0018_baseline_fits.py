"""Fitted weather-normalised baselines: one row per meter, model and period.

The ``baselines`` batch job fits, per meter with a weather station, CalTRACK's daily
degree-day model and the hourly time-of-week-and-temperature model on the year up to
its day, and keeps here what a reader needs to trust and use them: the period, the
number of points and coefficients, CV(RMSE) and NMBE, and the parameters (for the daily
model every coefficient and balance point, so a prediction needs nothing else; for the
hourly one its summary). ``metrify baseline fit --save`` writes here too. A re-run over
the same period replaces its row (the key is meter, model, period end).

The app's role reads and writes it; the grant is written here as well as coming from
the default privileges of migration 0010, since those apply only to tables the role that
ran 0010 creates.

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-06
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE baseline_fits (
            meter_id text NOT NULL,
            model text NOT NULL CHECK (model IN ('daily', 'hourly')),
            period_start date NOT NULL,
            period_end date NOT NULL,
            fitted_at timestamptz NOT NULL DEFAULT now(),
            n integer NOT NULL CHECK (n > 0),
            p integer NOT NULL CHECK (p >= 0),
            cvrmse double precision,
            nmbe double precision,
            params jsonb NOT NULL,
            PRIMARY KEY (meter_id, model, period_end),
            CHECK (period_end > period_start)
        );
        GRANT SELECT, INSERT, UPDATE, DELETE ON baseline_fits TO metrify_app;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE baseline_fits")
