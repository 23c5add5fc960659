"""Anomaly detection: anomaly records and the detectors' per-subject state.

``anomalies`` (stable names; the API, dashboards and BI read them):

- ``id`` bigserial, the anomaly's number (``metrify anomalies ack ID``)
- ``kind`` e.g. ``sustained_drop``, ``unusual_consumption``, ``unexpected_export``,
  ``frequency_excursion``, ``voltage_out_of_band``, ``feeder_overload``,
  ``feeder_imbalance``, ``unusual_load``, ``weather_jump``, ``stuck_sensor``,
  ``vacancy``, ``pattern_change``, ``peer_outlier`` (see ``metrify.contracts.anomalies.Kind``)
- ``subject_type`` ``meter`` | ``node`` | ``station``; ``subject_id`` its id
- ``ts_start``, ``ts_end`` the span of the incident, ``ts_end`` exclusive
- ``score`` detector-specific magnitude (robust z, lost share, Hz off nominal...)
- ``severity`` ``info`` | ``low`` | ``medium`` | ``high`` | ``critical``
- ``detector``, ``detector_version``; ``evidence`` jsonb (expected vs observed)
- ``intervals`` how many flagged intervals the incident holds
- ``status`` ``open`` | ``acknowledged`` | ``resolved`` | ``false_positive``;
  ``changed_by``, ``changed_at``, ``note`` the last status change
- ``created_at``, ``updated_at``; ``alerted_at`` when its one alert went out (NULL: none)

``anomaly_state``: one row per (subject_type, subject_id): the hour-of-week baseline as
three 168-element arrays (``level``, ``spread``, ``weight``) and running values (EWMAs,
when a drop or shift began, a sensor's last value and how long it has repeated, the
subject's typical daily peak).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE anomalies (
            id bigserial PRIMARY KEY,
            kind text NOT NULL,
            subject_type text NOT NULL CHECK (subject_type IN ('meter', 'node', 'station')),
            subject_id text NOT NULL,
            ts_start timestamptz NOT NULL,
            ts_end timestamptz NOT NULL,
            score double precision NOT NULL,
            severity text NOT NULL
                CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
            detector text NOT NULL,
            detector_version text NOT NULL,
            evidence jsonb NOT NULL DEFAULT '{}',
            intervals integer NOT NULL DEFAULT 1,
            status text NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'acknowledged', 'resolved', 'false_positive')),
            changed_by text,
            changed_at timestamptz,
            note text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            alerted_at timestamptz,
            CHECK (ts_end >= ts_start)
        );
        CREATE INDEX anomalies_subject ON anomalies (subject_type, subject_id, kind, ts_end);
        CREATE INDEX anomalies_ts ON anomalies (ts_start);
        CREATE INDEX anomalies_open ON anomalies (status, severity) WHERE status = 'open';

        CREATE TABLE anomaly_state (
            subject_type text NOT NULL,
            subject_id text NOT NULL,
            level double precision[],
            spread double precision[],
            weight double precision[],
            last_ts timestamptz,
            ewm_obs double precision,
            ewm_exp double precision,
            drop_since timestamptz,
            shift_since timestamptz,
            last_value double precision,
            run_since timestamptz,
            peak_kw double precision,
            peak_days double precision,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (subject_type, subject_id)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS anomaly_state; DROP TABLE IF EXISTS anomalies;")
