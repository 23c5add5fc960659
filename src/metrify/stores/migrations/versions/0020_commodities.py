"""Commodities, generation, volumes and meter events.

* ``meters``: the commodity a meter measures (electricity, gas, heat, water; null reads as
  electricity, so a reference file that leaves the column empty loads), the unit
  its head-end speaks, and for gas the calorific value (MJ/m³) and volume correction
  factor that turn a volume into energy (see ``docs/guides/commodities.md``). Existing
  meters are electricity meters: that is what the project carried until now.
* ``readings`` and ``reading_history``: ``generation_kwh`` (gross generation behind the
  meter, a PV production meter; not ``export_kwh``, which is what left for the grid),
  ``volume_m3`` (the metered volume of a gas or water meter) and ``export_register_kwh``
  (the cumulative export register, OBIS 2.8.0, beside the import register). Added to the partitioned
  parent, so every partition has them.
* ``meter_events``: what meters report beside readings (power failure and restore,
  tamper, cover open, clock set, reverse running). Events are few, so the table is not
  partitioned; the key ``(meter_id, ts, event)`` makes a re-sent event change nothing.

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-06
"""

from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

EVENTS = (
    "power_failure",
    "power_restore",
    "tamper",
    "cover_open",
    "cover_close",
    "clock_set",
    "reverse_running",
    "magnetic_field",
    "other",
)


def upgrade() -> None:
    events = ", ".join(f"'{e}'" for e in EVENTS)
    op.execute(
        f"""
        ALTER TABLE meters
            ADD COLUMN commodity text DEFAULT 'electricity'
                CHECK (commodity IN ('electricity', 'gas', 'heat', 'water')),
            ADD COLUMN unit text,
            ADD COLUMN calorific_value_mj_m3 double precision
                CHECK (calorific_value_mj_m3 BETWEEN 1 AND 100),
            ADD COLUMN correction_factor double precision
                CHECK (correction_factor BETWEEN 0.5 AND 2);
        ALTER TABLE readings
            ADD COLUMN generation_kwh double precision,
            ADD COLUMN volume_m3 double precision,
            ADD COLUMN export_register_kwh double precision;
        ALTER TABLE reading_history
            ADD COLUMN generation_kwh double precision,
            ADD COLUMN volume_m3 double precision,
            ADD COLUMN export_register_kwh double precision;

        CREATE TABLE meter_events (
            meter_id text NOT NULL CHECK (meter_id ~ '^[A-Za-z0-9_.:\\-]{{1,64}}$'),
            ts timestamptz NOT NULL,
            event text NOT NULL CHECK (event IN ({events})),
            code text,
            details text,
            source text NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (meter_id, ts, event)
        );
        CREATE INDEX meter_events_ts ON meter_events (ts);
        GRANT SELECT, INSERT, UPDATE, DELETE ON meter_events TO metrify_app;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE meter_events;
        ALTER TABLE reading_history DROP COLUMN generation_kwh, DROP COLUMN volume_m3,
            DROP COLUMN export_register_kwh;
        ALTER TABLE readings DROP COLUMN generation_kwh, DROP COLUMN volume_m3,
            DROP COLUMN export_register_kwh;
        ALTER TABLE meters DROP COLUMN commodity, DROP COLUMN unit,
            DROP COLUMN calorific_value_mj_m3, DROP COLUMN correction_factor;
        """
    )
