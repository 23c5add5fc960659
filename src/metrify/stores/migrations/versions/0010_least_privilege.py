"""Least privilege for the app, a TRUNCATE-proof audit log, and audit rows chained by hash.

The API, the CLI's loads and the workers used to connect as the PostgreSQL superuser, so a
bug or an injected statement could do anything, and the audit trigger (UPDATE and DELETE
only) let TRUNCATE through. Now:

- ``metrify_app`` is a NOLOGIN group role holding exactly what the code needs: SELECT,
  INSERT, UPDATE, DELETE on the data tables (and on tables later migrations add, through
  default privileges), only SELECT and INSERT on ``audit_log``, only SELECT on
  ``alembic_version``, USAGE on the sequences, and no TRUNCATE, no DDL, no ownership.
  Login roles become members of it (the embedded server's ``metrify_app_user``, or the
  operator's own role on an external server). It is created here when the migrating role
  may create roles; otherwise a DBA creates it first (see docs/guides/operations.md).
- Monthly partitions, which the writer creates on demand and which only a table's owner
  may create, go through ``metrify_ensure_partition``, a SECURITY DEFINER function owned by
  the migrating role with a fixed ``search_path``, that creates nothing but a monthly
  partition of a partitioned table of this schema.
- ``audit_log`` refuses TRUNCATE (a statement trigger, besides the missing privilege).
- Every audit row carries ``seq`` (its place in the chain), ``prev_hash`` and ``hash`` =
  sha256 over a canonical encoding of its fields and ``prev_hash``, set by a BEFORE INSERT
  trigger that holds the row lock of ``audit_chain`` (the chain's head: last seq and hash)
  until commit, so concurrent inserts chain one after the other. The trigger runs as the
  owner: the app can neither write the head nor choose a row's hash. An owner can still
  rewrite rows with the triggers off, and ``metrify audit verify`` then names the row.
  Rows already stored are chained here, in ``id`` order.

The canonical encoding (mirrored in ``metrify.stores.audit_chain``): the fields seq, id,
``at`` as integer microseconds since the Unix epoch, actor, actor_kind, action, target,
outcome, request_id, client, ``details::text`` and prev_hash, each written as ``N`` when
NULL or ``S<bytes>:<text>`` (UTF-8), concatenated; the first row's prev_hash is 64 zeros.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

GENESIS = "0" * 64

ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'metrify_app') THEN
        CREATE ROLE metrify_app NOLOGIN;
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO metrify_app',
                   current_database());
END $$;
-- PostgreSQL < 15 lets every role create objects in "public"; nothing but the owner may.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO metrify_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO metrify_app;
REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM metrify_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO metrify_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO metrify_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO metrify_app;
"""

PARTITIONS = """
CREATE FUNCTION metrify_ensure_partition(parent text, month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    name text := format('%s_p%s', parent, to_char(month, 'YYYY_MM'));
BEGIN
    IF month IS NULL OR month <> date_trunc('month', month)::date THEN
        RAISE EXCEPTION 'partition month must be the first day of a month, not %', month;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relname = parent AND c.relkind = 'p') THEN
        RAISE EXCEPTION '% is not a partitioned table', parent;
    END IF;
    -- several writers may ask for the same month at once
    PERFORM pg_advisory_xact_lock(7274032);
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relname = name) THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I FOR VALUES FROM (%L) TO (%L)',
                   name, parent, month::text || ' 00:00+00',
                   (month + interval '1 month')::date::text || ' 00:00+00');
    RETURN true;
END $$;
REVOKE EXECUTE ON FUNCTION metrify_ensure_partition(text, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrify_ensure_partition(text, date) TO metrify_app;
"""

CHAIN = f"""
CREATE FUNCTION audit_row_hash(seq bigint, id bigint, at timestamptz, actor text,
    actor_kind text, action text, target text, outcome text, request_id text, client text,
    details jsonb, prev_hash text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
    SELECT encode(sha256(convert_to(string_agg(
        CASE WHEN f IS NULL THEN 'N'
             ELSE 'S' || octet_length(convert_to(f, 'UTF8')) || ':' || f END, '' ORDER BY i),
        'UTF8')), 'hex')
    FROM unnest(ARRAY[seq::text, id::text,
                      (extract(epoch FROM at) * 1000000)::bigint::text, actor, actor_kind,
                      action, target, outcome, request_id, client, details::text, prev_hash])
         WITH ORDINALITY AS t(f, i)
$$;

CREATE TABLE audit_chain (
    head boolean PRIMARY KEY DEFAULT true CHECK (head),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_chain VALUES (true, 0, '{GENESIS}');
REVOKE ALL ON audit_chain FROM metrify_app;
GRANT SELECT ON audit_chain TO metrify_app;  -- `metrify audit verify` reads the head

ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN prev_hash text, ADD COLUMN hash text;

-- the rows already stored, in id order (the triggers refusing UPDATE are off meanwhile)
ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
DO $$
DECLARE
    r audit_log;
    n bigint := 0;
    prev text := '{GENESIS}';
    h text;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        h := audit_row_hash(n, r.id, r.at, r.actor, r.actor_kind, r.action, r.target,
                            r.outcome, r.request_id, r.client, r.details, prev);
        UPDATE audit_log SET seq = n, prev_hash = prev, hash = h WHERE id = r.id;
        prev := h;
    END LOOP;
    UPDATE audit_chain SET seq = n, hash = prev;
END $$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL, ALTER COLUMN prev_hash SET NOT NULL,
    ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);

CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tip audit_chain;
BEGIN
    -- the head's row lock, held until commit, puts concurrent inserts in one line
    SELECT * INTO tip FROM audit_chain WHERE head FOR UPDATE;
    IF NOT FOUND THEN  -- emptied by an owner (tests): the chain starts again
        INSERT INTO audit_chain VALUES (true, 0, '{GENESIS}') ON CONFLICT DO NOTHING;
        SELECT * INTO tip FROM audit_chain WHERE head FOR UPDATE;
    END IF;
    NEW.seq := tip.seq + 1;
    NEW.prev_hash := tip.hash;
    NEW.hash := audit_row_hash(NEW.seq, NEW.id, NEW.at, NEW.actor, NEW.actor_kind,
                               NEW.action, NEW.target, NEW.outcome, NEW.request_id,
                               NEW.client, NEW.details, NEW.prev_hash);
    UPDATE audit_chain SET seq = NEW.seq, hash = NEW.hash WHERE head;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM metrify_app;
"""


def upgrade() -> None:
    op.execute(ROLE)
    op.execute(PARTITIONS)
    op.execute(CHAIN)


def downgrade() -> None:
    # metrify_app itself stays: a role belongs to the whole server, where other databases
    # may use it; only what it holds in this database is taken back. CREATE on schema
    # public stays revoked from PUBLIC: handing it back would reopen a hole, not undo a
    # feature.
    op.execute(
        """
        DROP TRIGGER audit_log_no_truncate ON audit_log;
        DROP TRIGGER audit_log_chain ON audit_log;
        DROP FUNCTION audit_log_chain();
        DROP INDEX audit_log_seq;
        ALTER TABLE audit_log DROP COLUMN hash, DROP COLUMN prev_hash, DROP COLUMN seq;
        DROP TABLE audit_chain;
        DROP FUNCTION audit_row_hash(bigint, bigint, timestamptz, text, text, text, text,
            text, text, text, jsonb, text);
        DROP FUNCTION metrify_ensure_partition(text, date);
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM metrify_app;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE USAGE, SELECT ON SEQUENCES FROM metrify_app;
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM metrify_app;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM metrify_app;
        REVOKE USAGE ON SCHEMA public FROM metrify_app;
        DO $$
        BEGIN
            EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM metrify_app',
                           current_database());
        END $$;
        """
    )
