"""admin_sessions: server-side admin page logins, so logging out ends them

Revision ID: 0002_admin_sessions
Revises: 3d89c780865b
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndicator.store.models

revision: str = "0002_admin_sessions"
down_revision: str | None = "3d89c780865b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.Column("seen_at", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("admin_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_sessions_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("admin_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_sessions_seen_at"))
    op.drop_table("admin_sessions")
