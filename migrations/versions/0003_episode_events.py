"""episode history: the episode_events table

Revision ID: 0003_episode_events
Revises: 0002_admin_sessions
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndicator.store.models

revision: str = "0003_episode_events"
down_revision: str | None = "0002_admin_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "episode_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("at", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.Column("event", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["episode_id"], ["episodes.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("episode_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_episode_events_episode_id"), ["episode_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("episode_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_episode_events_episode_id"))
    op.drop_table("episode_events")
