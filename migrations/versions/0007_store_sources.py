"""sources kept in the store (OPML import) and each remote feed's show

Revision ID: 0007_store_sources
Revises: 0006_audio_checks
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import syndicator.store.models

revision: str = "0007_store_sources"
down_revision: str | None = "0006_audio_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "stored_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _STR(), nullable=False),
        sa.Column("url", _STR(), nullable=False),
        sa.Column("title", _STR(), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("origin", _STR(), nullable=False),
        sa.Column("added_at", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stored_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stored_sources_name"), ["name"], unique=True)
        batch_op.create_index(batch_op.f("ix_stored_sources_url"), ["url"], unique=False)
    op.create_table(
        "shows",
        sa.Column("source", _STR(), nullable=False),
        sa.Column("title", _STR(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("link", _STR(), nullable=False),
        sa.Column("image", _STR(), nullable=False),
        sa.Column("author", _STR(), nullable=False),
        sa.Column("owner_name", _STR(), nullable=False),
        sa.Column("owner_email", _STR(), nullable=False),
        sa.Column("language", _STR(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("podcast_guid", _STR(), nullable=True),
        sa.Column("new_feed_url", _STR(), nullable=False),
        sa.Column("locked", sa.Boolean(), nullable=True),
        sa.Column("locked_owner", _STR(), nullable=False),
        sa.Column("funding", sa.JSON(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("medium", _STR(), nullable=False),
        sa.Column("last_build_date", syndicator.store.models.UTCDateTime(), nullable=True),
        sa.Column("feed_url", _STR(), nullable=False),
        sa.Column("updated_at", syndicator.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    with op.batch_alter_table("shows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shows_podcast_guid"), ["podcast_guid"], unique=False)
        batch_op.create_index(batch_op.f("ix_shows_feed_url"), ["feed_url"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shows_feed_url"))
        batch_op.drop_index(batch_op.f("ix_shows_podcast_guid"))
    op.drop_table("shows")
    with op.batch_alter_table("stored_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stored_sources_url"))
        batch_op.drop_index(batch_op.f("ix_stored_sources_name"))
    op.drop_table("stored_sources")
