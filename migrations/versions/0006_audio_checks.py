"""audio checks: whether an episode's enclosure answered before it is announced

Revision ID: 0006_audio_checks
Revises: 0005_delivery_counts
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndicator.store.models

revision: str = "0006_audio_checks"
down_revision: str | None = "0005_delivery_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ts = syndicator.store.models.UTCDateTime
    op.create_table(
        "audio_checks",
        sa.Column("episode_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("first_failed_at", ts(), nullable=True),
        sa.Column("last_checked_at", ts(), nullable=True),
        sa.Column("next_check_at", ts(), nullable=True),
        sa.Column("passed_at", ts(), nullable=True),
        sa.Column("timed_out_at", ts(), nullable=True),
        sa.Column("alerted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["episode_id"], ["episodes.id"]),
        sa.PrimaryKeyConstraint("episode_id"),
    )


def downgrade() -> None:
    op.drop_table("audio_checks")
