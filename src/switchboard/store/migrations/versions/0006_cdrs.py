"""cdrs: call detail records with Asterisk's fields

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cdrs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("accountcode", sa.String(length=80), nullable=False),
        sa.Column("src", sa.String(length=255), nullable=False),
        sa.Column("dst", sa.String(length=255), nullable=False),
        sa.Column("dcontext", sa.String(length=255), nullable=False),
        sa.Column("clid", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("dstchannel", sa.String(length=255), nullable=False),
        sa.Column("lastapp", sa.String(length=80), nullable=False),
        sa.Column("lastdata", sa.Text(), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("answer", sa.DateTime(), nullable=True),
        sa.Column("end", sa.DateTime(), nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("billsec", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=16), nullable=False),
        sa.Column("amaflags", sa.String(length=16), nullable=False),
        sa.Column("uniqueid", sa.String(length=150), nullable=False),
        sa.Column("linkedid", sa.String(length=150), nullable=False),
        sa.Column("userfield", sa.String(length=255), nullable=False),
        sa.Column("peeraccount", sa.String(length=80), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cdrs")),
        sa.UniqueConstraint("uniqueid", name=op.f("uq_cdrs_uniqueid")),
    )
    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.create_index("ix_cdrs_start", ["start"], unique=False)
        batch_op.create_index("ix_cdrs_linkedid", ["linkedid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cdrs", schema=None) as batch_op:
        batch_op.drop_index("ix_cdrs_linkedid")
        batch_op.drop_index("ix_cdrs_start")
    op.drop_table("cdrs")
