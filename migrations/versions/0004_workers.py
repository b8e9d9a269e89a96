"""workers: the workers table and source leases (many workers on one PostgreSQL)

Revision ID: 0004_workers
Revises: 0004_cards_image_alt
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndicator.store.models

revision: str = "0004_workers"
down_revision: str | None = "0004_cards_image_alt"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.Column("stopped", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("polls", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("sends", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workers_last_seen"), ["last_seen"], unique=False)
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("lease_until", syndicator.store.models.UTCDateTime(), nullable=True)
        )
        # workers claim the earliest due sources first
        batch_op.create_index(batch_op.f("ix_sources_next_due_at"), ["next_due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sources_next_due_at"))
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workers_last_seen"))
    op.drop_table("workers")
