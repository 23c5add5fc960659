"""The detectors' state keeps where an upward shift's run last ended.

A meter's upward shift (new load) goes on through a dip under its exit ratio of at most
``shift_bridge_hours`` (a home tripling its use is quiet for a few afternoon hours). A
run that ends in such a dip at the end of a batch is left open in ``anomaly_state``:
``shift_since`` keeps its start and ``shift_until`` the end of its last row, so the next
batch (a stream's next minutes, a file's next week) resumes it within the bridge, as
the rest of one batch would. Existing rows keep a null: an open run is taken to end
where the state last moved on (``last_ts``), as before.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE anomaly_state ADD COLUMN shift_until timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE anomaly_state DROP COLUMN shift_until")
