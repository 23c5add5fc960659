"""REST API: users, API keys, refresh tokens, idempotency keys, the append-only audit log.

Secrets are never stored: passwords as Argon2 hashes, API keys and refresh tokens as
SHA-256 digests of high-entropy random strings (a prefix finds the key row). The audit
log refuses UPDATE and DELETE with a trigger, so even the application's own role cannot
rewrite history; retention is a deliberate TRUNCATE or partition drop by the DBA.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLE_CHECK = "CHECK (role IN ('admin', 'operator', 'analyst', 'viewer', 'ingest'))"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE users (
            user_id bigserial PRIMARY KEY,
            username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{{1,64}}$'),
            password_hash text NOT NULL,
            role text NOT NULL {ROLE_CHECK},
            regions text[],
            disabled boolean NOT NULL DEFAULT false,
            -- tokens issued before this instant are void (disable, password change)
            tokens_valid_after timestamptz NOT NULL DEFAULT now(),
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_login_at timestamptz
        );

        CREATE TABLE api_keys (
            key_id bigserial PRIMARY KEY,
            prefix text NOT NULL UNIQUE,
            key_hash bytea NOT NULL,
            name text NOT NULL,
            role text NOT NULL {ROLE_CHECK},
            regions text[],
            owner_id bigint REFERENCES users (user_id),
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz,
            revoked_at timestamptz,
            last_used_at timestamptz
        );

        CREATE TABLE refresh_tokens (
            token_hash bytea PRIMARY KEY,
            user_id bigint NOT NULL REFERENCES users (user_id),
            family uuid NOT NULL,
            issued_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL,
            revoked_at timestamptz
        );
        CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

        CREATE TABLE idempotency_keys (
            principal text NOT NULL,
            key text NOT NULL,
            endpoint text NOT NULL,
            request_hash bytea NOT NULL,
            status_code integer,
            response bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (principal, key)
        );
        CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

        -- the ingest endpoints answer with the quarantined rows of their own request
        CREATE INDEX quarantine_source ON quarantine (source);

        CREATE TABLE audit_log (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor text NOT NULL,
            actor_kind text NOT NULL,
            action text NOT NULL,
            target text,
            outcome text NOT NULL,
            request_id text,
            client text,
            details jsonb NOT NULL DEFAULT '{{}}'::jsonb
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        CREATE INDEX audit_log_actor ON audit_log (actor, at);

        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
        END $$;
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE IF EXISTS audit_log;
        DROP FUNCTION IF EXISTS audit_log_append_only();
        DROP INDEX IF EXISTS quarantine_source;
        DROP TABLE IF EXISTS idempotency_keys;
        DROP TABLE IF EXISTS refresh_tokens;
        DROP TABLE IF EXISTS api_keys;
        DROP TABLE IF EXISTS users;
        """
    )
