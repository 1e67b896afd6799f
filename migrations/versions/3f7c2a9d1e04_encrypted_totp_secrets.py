"""TOTP secrets stored encrypted: room for the Fernet token

The column keeps its name; app/models/encrypted.py encrypts and decrypts it. Secrets already
stored stay plain (still read as they are) until `flask users reencrypt-secrets` encrypts them.

Revision ID: 3f7c2a9d1e04
Revises: 62486ede61bc
Create Date: 2026-11-24 02:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = '3f7c2a9d1e04'
down_revision = '62486ede61bc'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', existing_type=sa.String(length=64), type_=sa.String(length=255),
                              existing_nullable=True)


def downgrade():
    # An encrypted secret does not fit in 64 characters, and the code before this revision could
    # not read it anyway: refuse rather than lose anyone's second factor.
    longer = op.get_bind().execute(sa.text("SELECT count(*) FROM users WHERE length(totp_secret) > 64")).scalar()
    if longer:
        raise RuntimeError(f"{longer} two-factor secret(s) are stored encrypted; the previous schema "
                           "cannot hold them. Downgrading would lock those accounts out.")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('totp_secret', existing_type=sa.String(length=255), type_=sa.String(length=64),
                              existing_nullable=True)
