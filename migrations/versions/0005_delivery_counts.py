"""listener counts: the delivery_counts table (a time series per sent post)

Revision ID: 0005_delivery_counts
Revises: 0004_workers
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndicator.store.models

revision: str = "0005_delivery_counts"
down_revision: str | None = "0004_workers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.Column("likes", sa.BigInteger(), nullable=True),
        sa.Column("reposts", sa.BigInteger(), nullable=True),
        sa.Column("replies", sa.BigInteger(), nullable=True),
        sa.Column("quotes", sa.BigInteger(), nullable=True),
        sa.Column("views", sa.BigInteger(), nullable=True),
        sa.Column("gone", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_counts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_counts_delivery_at", ["delivery_id", "at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_delivery_counts_channel"), ["channel"], unique=False)
        batch_op.create_index(batch_op.f("ix_delivery_counts_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_counts_at"))
        batch_op.drop_index(batch_op.f("ix_delivery_counts_channel"))
        batch_op.drop_index("ix_delivery_counts_delivery_at")
    op.drop_table("delivery_counts")
