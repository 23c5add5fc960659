"""Foundation schema: reference tables, partitioned time series, history, quarantine.

Time-series tables are range-partitioned by ``ts``; monthly partitions are created on
demand by the writer (``metrify.stores.partitions``), so there is no default partition
that could later block a new month.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID_CHECK = r"CHECK ({col} ~ '^[A-Za-z0-9_.:\-]{{1,64}}$')"
STATUS_CHECK = "CHECK (status IN ('valid', 'suspect', 'estimated', 'rejected'))"
VERSION_COLUMNS = """
    quality integer NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'valid',
    source text NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
"""
HISTORY_COLUMNS = """
    replaced_at timestamptz NOT NULL DEFAULT now(),
    replaced_by text NOT NULL,
    reason text NOT NULL
"""

READING_VALUES = """
    interval_s integer NOT NULL CHECK (interval_s BETWEEN 60 AND 86400 AND 86400 % interval_s = 0),
    import_kwh double precision,
    export_kwh double precision,
    register_kwh double precision,
    voltage_v double precision,
    current_a double precision,
    power_factor double precision,
    active_power_kw double precision,
    reactive_power_kvar double precision,
    frequency_hz double precision,
"""
GRID_VALUES = """
    interval_s integer NOT NULL CHECK (interval_s > 0),
    load_mw double precision,
    generation_mw double precision,
    frequency_hz double precision,
    voltage_kv double precision,
    price_per_mwh double precision,
"""
WEATHER_VALUES = """
    temperature_c double precision,
    humidity_pct double precision,
    wind_speed_ms double precision,
    wind_dir_deg double precision,
    pressure_hpa double precision,
    precipitation_mm double precision,
    solar_wm2 double precision,
    cloud_cover_pct double precision,
"""

SERIES = [
    ("readings", "reading_history", "meter_id", READING_VALUES),
    ("grid_measurements", "grid_measurement_history", "node_id", GRID_VALUES),
    ("weather_observations", "weather_observation_history", "station_id", WEATHER_VALUES),
]


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE meters (
            meter_id text PRIMARY KEY {ID_CHECK.format(col="meter_id")},
            site_id text,
            region text,
            node_id text,
            station_id text,
            tariff text,
            interval_s integer,
            max_kw double precision,
            rated_current_a double precision,
            register_digits smallint CHECK (register_digits BETWEEN 1 AND 12),
            has_pv boolean,
            timezone text,
            install_date date,
            status text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'inactive', 'removed', 'unregistered')),
            latitude double precision,
            longitude double precision,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX meters_region ON meters (region);
        CREATE INDEX meters_node ON meters (node_id);

        CREATE TABLE grid_nodes (
            node_id text PRIMARY KEY {ID_CHECK.format(col="node_id")},
            parent_id text,
            kind text,
            name text,
            capacity_mw double precision,
            nominal_kv double precision,
            status text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'inactive', 'removed', 'unregistered')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE weather_stations (
            station_id text PRIMARY KEY {ID_CHECK.format(col="station_id")},
            name text,
            latitude double precision,
            longitude double precision,
            elevation_m double precision,
            status text NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'inactive', 'removed', 'unregistered')),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE quarantine (
            id bigserial PRIMARY KEY,
            kind text NOT NULL,
            source text NOT NULL,
            raw text NOT NULL,
            reason text NOT NULL,
            line integer,
            received_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX quarantine_received ON quarantine (received_at);
        CREATE INDEX quarantine_kind_reason ON quarantine (kind, reason);
        """
    )
    for table, history, id_col, values in SERIES:
        op.execute(
            f"""
            CREATE TABLE {table} (
                {id_col} text NOT NULL,
                ts timestamptz NOT NULL,
                {values}
                {VERSION_COLUMNS},
                CONSTRAINT {table}_status {STATUS_CHECK},
                PRIMARY KEY ({id_col}, ts)
            ) PARTITION BY RANGE (ts);
            CREATE INDEX {table}_ts ON {table} (ts);

            CREATE TABLE {history} (
                id bigserial PRIMARY KEY,
                {id_col} text NOT NULL,
                ts timestamptz NOT NULL,
                {values}
                {VERSION_COLUMNS},
                {HISTORY_COLUMNS}
            );
            CREATE INDEX {history}_key ON {history} ({id_col}, ts);
            """
        )


def downgrade() -> None:
    for table, history, _, _ in SERIES:
        op.execute(f"DROP TABLE IF EXISTS {history}; DROP TABLE IF EXISTS {table} CASCADE;")
    op.execute(
        "DROP TABLE IF EXISTS quarantine; DROP TABLE IF EXISTS weather_stations;"
        " DROP TABLE IF EXISTS grid_nodes; DROP TABLE IF EXISTS meters;"
    )
