"""A month new to the store can be loaded into a bare table, indexed once, then attached.

A load of history (a year of household files, a utility's backfill) writes months that
have no partition yet. Copied into a partition created empty, every row went through
the primary key's index one at a time (and the BRIN's); PostgreSQL's own advice for
populating a table is to load it first and build its indexes after, which sorts once.
Two SECURITY DEFINER functions, beside ``metrify_ensure_partition`` (0010) and owned by
the same role, give the least-privileged app that door and no other:

- ``metrify_new_month(parent, month)`` creates a bare table shaped like ``parent``
  (columns, defaults, checks; no index), named for the month and the calling backend,
  with a check that holds its rows to the month; NULL when the month's partition exists.
  It takes the advisory lock ``metrify_ensure_partition`` takes, for the rest of the
  transaction and before it touches the parent: a writer creating any partition
  meanwhile waits for this transaction (it would wait for the parent anyway, which the
  bare table's shape was read from) and then finds the month made.
- ``metrify_attach_month(parent, month)`` renames the calling backend's bare table of
  that month to the partition's name and attaches it: PostgreSQL builds the partition's
  indexes then, each in one sorted pass. Should the partition exist after all, it raises
  ``duplicate_table`` and the caller writes the usual way.

Both run inside the caller's transaction: a failed load leaves no bare table behind.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_CHECKS = """
    IF month IS NULL OR month <> date_trunc('month', month)::date THEN
        RAISE EXCEPTION 'partition month must be the first day of a month, not %', month;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relname = parent AND c.relkind = 'p') THEN
        RAISE EXCEPTION '% is not a partitioned table', parent;
    END IF;
"""

FUNCTIONS = f"""
CREATE FUNCTION metrify_new_month(parent text, month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    name text := format('%s_p%s', parent, to_char(month, 'YYYY_MM'));
    bare text := format('%s_load%s', name, pg_backend_pid());
BEGIN
{_CHECKS}
    -- The month's one creator until this transaction ends (metrify_ensure_partition
    -- takes the same lock), taken before the parent is touched: a writer creating a
    -- partition holds this lock and then wants the parent to itself, so the other
    -- order would deadlock with it.
    PERFORM pg_advisory_xact_lock(7274032);
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relname = name) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS)', bare, parent);
    EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)',
                   bare, bare || '_month', month::text || ' 00:00+00',
                   (month + interval '1 month')::date::text || ' 00:00+00');
    RETURN bare;
END $$;
REVOKE EXECUTE ON FUNCTION metrify_new_month(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrify_new_month(text, date) TO metrify_app;

CREATE FUNCTION metrify_attach_month(parent text, month date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    name text := format('%s_p%s', parent, to_char(month, 'YYYY_MM'));
    bare text := format('%s_load%s', name, pg_backend_pid());
BEGIN
{_CHECKS}
    IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relname = bare AND c.relkind = 'r') THEN
        RAISE EXCEPTION 'no table % to attach', bare;
    END IF;
    PERFORM pg_advisory_xact_lock(7274032);  -- held since metrify_new_month
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relname = name) THEN
        RAISE EXCEPTION 'partition % exists', name USING ERRCODE = 'duplicate_table';
    END IF;
    EXECUTE format('ALTER TABLE public.%I RENAME TO %I', bare, name);
    EXECUTE format('ALTER TABLE public.%I ATTACH PARTITION public.%I FOR VALUES FROM (%L)'
                   ' TO (%L)', parent, name, month::text || ' 00:00+00',
                   (month + interval '1 month')::date::text || ' 00:00+00');
    -- the partition's bound says it now
    EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', name, bare || '_month');
END $$;
REVOKE EXECUTE ON FUNCTION metrify_attach_month(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrify_attach_month(text, date) TO metrify_app;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute("DROP FUNCTION metrify_attach_month(text, date)")
    op.execute("DROP FUNCTION metrify_new_month(text, date)")
