"""Aggregates announce their changes (``NOTIFY metrify_aggregates``), and groups count
their members with an export value.

API workers cache energy answers (``GET /v1/energy``), which change only when readings
or a meter's groups or zone change. The triggers that mark those changes (migration
0013) now also notify, so a cached answer is dropped at the commit of any write that
touches the aggregates, by whatever process made it (an API worker, ``metrify ingest``,
a Kafka worker, SQL by hand). A statement that changed no row says nothing, and
PostgreSQL folds repeated notifications of one transaction into one.

A refresh now brings group buckets along by the difference of their meters' rows
instead of summing every member again; a group's export stays NULL while none of its
members has one, which ``n_export`` counts. The existing group buckets are summed again
once, at the next refresh, to fill it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_MARK_READINGS = """
        CREATE OR REPLACE FUNCTION agg_mark_readings() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(7305118246);
            INSERT INTO agg_dirty (meter_id, day)
            SELECT DISTINCT meter_id, (ts AT TIME ZONE 'UTC')::date FROM changed_rows;
            {notify}
            RETURN NULL;
        END $$;
"""

_MARK_MOVES = """
        CREATE OR REPLACE FUNCTION agg_mark_moves() RETURNS trigger LANGUAGE plpgsql AS $$
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
            {notify}
            RETURN NULL;
        END $$;
"""

# a meter's answers also follow its zone (their default), so any updated meter notifies
_NOTIFY_READINGS = (
    "IF EXISTS (SELECT 1 FROM changed_rows) THEN"
    " PERFORM pg_notify('metrify_aggregates', ''); END IF;"
)
_NOTIFY_MOVES = (
    "IF EXISTS (SELECT 1 FROM new_rows) THEN PERFORM pg_notify('metrify_aggregates', ''); END IF;"
)


def upgrade() -> None:
    op.execute(_MARK_READINGS.format(notify=_NOTIFY_READINGS))
    op.execute(_MARK_MOVES.format(notify=_NOTIFY_MOVES))
    op.execute(
        """
        ALTER TABLE agg_group_30m ADD COLUMN n_export integer NOT NULL DEFAULT 0;
        INSERT INTO agg_group_dirty (dim, key, day)
        SELECT DISTINCT dim, key, (bucket AT TIME ZONE 'UTC')::date FROM agg_group_30m;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE agg_group_30m DROP COLUMN n_export")
    op.execute(_MARK_READINGS.format(notify=""))
    op.execute(_MARK_MOVES.format(notify=""))
