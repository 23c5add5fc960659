"""Energy aggregates: 30-minute buckets per meter and per group, kept right by marks.

Queries of energy, peak demand and interval counts at 30 minutes to a month, in any
zone, must not scan raw readings (a month of one feeder is ~100,000 of them). The base is
one row per meter per 30-minute UTC bucket (``agg_meter_30m``) and one per group (grid
node, region, tariff segment, the fleet) per bucket (``agg_group_30m``); every coarser
local bucket (hour, day, week, month in the meter's or the asked zone) is a sum of whole
30-minute UTC buckets, since every zone in use is offset from UTC by whole half-hours.

Kept right the way the daily quality scores are: any change to readings (a load, a late
reading, a correction, an estimate replaced, an operator's edit, even SQL by hand) marks
its (meter, UTC day) in ``agg_dirty`` through statement triggers with transition tables,
so no writer can forget it; moving a meter to another node, region or tariff marks the
days it has under both its old and its new group. :mod:`metrify.stores.aggregates`
recomputes what is marked, before it is read.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COUNTS = """
    import_kwh double precision NOT NULL DEFAULT 0,
    export_kwh double precision,
    peak_kw double precision,
    n_present integer NOT NULL DEFAULT 0,
    n_estimated integer NOT NULL DEFAULT 0,
    n_suspect integer NOT NULL DEFAULT 0,
    n_rejected integer NOT NULL DEFAULT 0,
    n_missing integer NOT NULL DEFAULT 0
"""


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE agg_meter_30m (
            meter_id text NOT NULL,
            bucket timestamptz NOT NULL,
            {_COUNTS},
            PRIMARY KEY (meter_id, bucket)
        );
        CREATE TABLE agg_group_30m (
            dim text NOT NULL CHECK (dim IN ('node', 'region', 'segment', 'fleet')),
            key text NOT NULL,
            bucket timestamptz NOT NULL,
            meters integer NOT NULL DEFAULT 0,
            {_COUNTS},
            PRIMARY KEY (dim, key, bucket)
        );
        -- Marks have no unique key: concurrent writers of the same meter-day must not
        -- wait on each other's uncommitted mark (ON CONFLICT would make the second wait
        -- for the first to commit, and a process writing on two connections would then
        -- wait on itself). A repeated mark costs a row until the next rebuild.
        CREATE TABLE agg_dirty (
            meter_id text NOT NULL,
            day date NOT NULL
        );
        CREATE TABLE agg_group_dirty (
            dim text NOT NULL,
            key text NOT NULL,
            day date NOT NULL
        );

        -- The shared lock, held to the writer's commit, orders marks against a
        -- refresh (which takes it exclusively): see metrify.stores.aggregates.
        CREATE FUNCTION agg_mark_readings() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(7305118246);
            INSERT INTO agg_dirty (meter_id, day)
            SELECT DISTINCT meter_id, (ts AT TIME ZONE 'UTC')::date FROM changed_rows;
            RETURN NULL;
        END $$;
        CREATE TRIGGER readings_agg_insert AFTER INSERT ON readings
            REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION agg_mark_readings();
        CREATE TRIGGER readings_agg_update AFTER UPDATE ON readings
            REFERENCING NEW TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION agg_mark_readings();
        CREATE TRIGGER readings_agg_delete AFTER DELETE ON readings
            REFERENCING OLD TABLE AS changed_rows
            FOR EACH STATEMENT EXECUTE FUNCTION agg_mark_readings();

        -- A meter moved to another node, region or tariff: the days it has count under
        -- the old group no more and under the new one from now on.
        CREATE FUNCTION agg_mark_moves() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(7305118246);
            INSERT INTO agg_group_dirty (dim, key, day)
            SELECT DISTINCT g.dim, g.key, (a.bucket AT TIME ZONE 'UTC')::date
            FROM old_rows o JOIN new_rows n USING (meter_id)
            JOIN agg_meter_30m a ON a.meter_id = o.meter_id
            CROSS JOIN LATERAL (VALUES
                ('node', o.node_id), ('node', n.node_id),
                ('region', o.region), ('region', n.region),
                ('segment', o.tariff), ('segment', n.tariff)) AS g(dim, key)
            WHERE g.key IS NOT NULL AND (o.node_id IS DISTINCT FROM n.node_id
                OR o.region IS DISTINCT FROM n.region OR o.tariff IS DISTINCT FROM n.tariff);
            RETURN NULL;
        END $$;
        CREATE TRIGGER meters_agg_moves AFTER UPDATE ON meters
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION agg_mark_moves();

        -- What is already stored is marked once, so the first refresh builds it all.
        INSERT INTO agg_dirty (meter_id, day)
        SELECT DISTINCT meter_id, (ts AT TIME ZONE 'UTC')::date FROM readings;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER meters_agg_moves ON meters;
        DROP TRIGGER readings_agg_insert ON readings;
        DROP TRIGGER readings_agg_update ON readings;
        DROP TRIGGER readings_agg_delete ON readings;
        DROP FUNCTION agg_mark_moves();
        DROP FUNCTION agg_mark_readings();
        DROP TABLE agg_group_dirty, agg_dirty, agg_group_30m, agg_meter_30m;
        """
    )
