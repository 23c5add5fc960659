"""Sign-in throttle counters shared by every worker; exact revocation of access tokens.

``auth_throttle`` holds one instant per counter key (a client address, a user name, a
known address of a user, refresh failures of an address): see
:mod:`metrify.stores.throttle`. A row whose ``until`` has passed means nothing and is
deleted a few at a time by later writes; the index finds them.

``users.token_version`` replaces the whole-second ``tokens_valid_after`` comparison:
access tokens carry the version their user had when they were signed, and a password
change or disable increments it, so a token signed before the change is refused and one
signed after is accepted, however close in time (the order of the database's
transactions decides, not two clocks). Tokens issued before this migration carry no
version and are refused: their holders sign in again (or refresh).

Access tokens also carry their refresh-token family; the partial index answers "does
the family still have a live refresh token?" for every request from the few live rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE auth_throttle (
            key text PRIMARY KEY,
            until timestamptz NOT NULL
        );
        CREATE INDEX auth_throttle_until ON auth_throttle (until);

        ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0;

        CREATE INDEX refresh_tokens_live_family ON refresh_tokens (family)
            WHERE revoked_at IS NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX IF EXISTS refresh_tokens_live_family;
        ALTER TABLE users DROP COLUMN IF EXISTS token_version;
        DROP TABLE IF EXISTS auth_throttle;
        """
    )
