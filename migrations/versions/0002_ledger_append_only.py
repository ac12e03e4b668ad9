"""ledger append-only: the database refuses UPDATE and DELETE on ledger_event (RELIABILITY LED-01)

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MESSAGE = "ledger_event is append-only: record a reversal event instead of changing or deleting one"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE TRIGGER ledger_event_no_update BEFORE UPDATE ON ledger_event "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        op.execute(
            "CREATE TRIGGER ledger_event_no_delete BEFORE DELETE ON ledger_event "
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION ledger_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = '42501'; END; $$"
        )
        op.execute(
            "CREATE TRIGGER ledger_event_no_update BEFORE UPDATE OR DELETE ON ledger_event "
            "FOR EACH ROW EXECUTE FUNCTION ledger_event_append_only()"
        )
        # TRUNCATE is not a row change; the test suite empties tables with it between tests.
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"no append-only trigger for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS ledger_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS ledger_event_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_event_no_update ON ledger_event")
        op.execute("DROP FUNCTION IF EXISTS ledger_event_append_only()")
