"""Group aggregates per commodity: water m³ never sums into a feeder's kWh.

Meters measure electricity, gas, heat or water (migration 0020), and a grid node, a
region, a tariff segment or the fleet may hold meters of several. A group's bucket of
``agg_group_30m`` summed every member's ``import_kwh`` whatever it held, so a water
meter's m³ (and a gas meter's kWh of heat value) mixed into the electricity total. The
table gains ``commodity`` in its key: a group's bucket is now one per commodity of its
members (a meter with no commodity counts as electricity, as everywhere else).

A meter whose commodity changes moves between commodities of every group it is in, the
fleet included: the move trigger marks those group-days as it marks a node move. The
group buckets that exist are summed again at the next refresh, split by commodity.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_COMMODITY = "coalesce({0}.commodity, 'electricity')"
_CHANGED = _COMMODITY.format("o") + " IS DISTINCT FROM " + _COMMODITY.format("n")

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
                ('segment', o.tariff), ('segment', n.tariff),
                ('fleet', {fleet})) AS g(dim, key)
            WHERE g.key IS NOT NULL AND (o.node_id IS DISTINCT FROM n.node_id
                OR o.region IS DISTINCT FROM n.region OR o.tariff IS DISTINCT FROM n.tariff
                {or_commodity});
            IF EXISTS (SELECT 1 FROM new_rows) THEN
                PERFORM pg_notify('metrify_aggregates', '');
            END IF;
            RETURN NULL;
        END $$;
"""


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE agg_group_30m
            ADD COLUMN commodity text NOT NULL DEFAULT 'electricity'
                CHECK (commodity IN ('electricity', 'gas', 'heat', 'water'));
        ALTER TABLE agg_group_30m DROP CONSTRAINT agg_group_30m_pkey;
        ALTER TABLE agg_group_30m ADD PRIMARY KEY (dim, key, commodity, bucket);
        INSERT INTO agg_group_dirty (dim, key, day)
        SELECT DISTINCT dim, key, (bucket AT TIME ZONE 'UTC')::date FROM agg_group_30m;
        """
    )
    op.execute(
        _MARK_MOVES.format(
            fleet=f"CASE WHEN {_CHANGED} THEN 'all' END", or_commodity=f"OR {_CHANGED}"
        )
    )


def downgrade() -> None:
    op.execute(_MARK_MOVES.format(fleet="NULL", or_commodity=""))
    op.execute(
        """
        DELETE FROM agg_group_30m WHERE commodity <> 'electricity';
        ALTER TABLE agg_group_30m DROP CONSTRAINT agg_group_30m_pkey;
        ALTER TABLE agg_group_30m DROP COLUMN commodity;
        ALTER TABLE agg_group_30m ADD PRIMARY KEY (dim, key, bucket);
        INSERT INTO agg_group_dirty (dim, key, day)
        SELECT DISTINCT dim, key, (bucket AT TIME ZONE 'UTC')::date FROM agg_group_30m;
        """
    )
