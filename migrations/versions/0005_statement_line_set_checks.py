"""statement lines: set-based integrity checks instead of row-by-row foreign keys (issue 6)

A monthly run deletes the previous computation's lines and writes ~100 000 new ones in one
statement. With foreign keys PostgreSQL checks every line on its own: four ``SELECT … FOR KEY
SHARE`` per inserted line (run, staff, branch, campaign) and one look-up in ``dispute`` per
deleted line — 1.8 s of the run for 100 000 lines. This revision replaces those five foreign keys
with triggers that give the same guarantees:

* PostgreSQL — once per *statement* on ``statement_line`` (transition tables): lock the DISTINCT
  parent rows the new lines name ``FOR KEY SHARE`` (as a foreign key does, but once per parent)
  and refuse the whole statement (SQLSTATE 23503, naming the column and the missing id) if one is
  missing; refuse to delete (or renumber) lines that disputes refer to. On the parents, a row
  trigger refuses to delete (or renumber) a staff member, branch or campaign that lines refer to;
  deleting an incentive run deletes its lines (the old ON DELETE CASCADE); TRUNCATE of a parent
  alone is refused while lines exist, as with a foreign key. ``dispute.line_id`` is checked per
  dispute row (disputes are few).
* SQLite — the same rules as row triggers (SQLite has no statement triggers; its messages cannot
  carry the id). The foreign keys are dropped there too, so that the models (which no longer
  declare them) match both databases.

Concurrency (READ COMMITTED, as the application runs) follows PostgreSQL's own RI triggers: the
KEY SHARE locks the inserting statement takes make a concurrent DELETE of that parent wait until
the lines are committed (or rolled back); the parent's BEFORE DELETE trigger runs only once the
row is locked, and its query takes a fresh snapshot, so it sees the committed lines and refuses.
A line insert racing a parent delete that came first waits on the deleted row's lock and, once the
delete commits, finds no row and fails. Outside READ COMMITTED, where a
trigger cannot re-check with a newer snapshot as PostgreSQL's foreign keys do, the deletes that
depend on it are refused. See docs/reliability.md (after the LED table) and docs/benchmarks.md.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: statement_line column → (parent table, what the parent is called in messages)
PARENTS = {
    "run_id": ("incentive_run", "incentive run"),
    "staff_id": ("staff", "staff member"),
    "branch_id": ("branch", "branch"),
    "campaign_id": ("campaign", "campaign"),
}
#: the foreign keys this revision replaces: name → (table, column, parent, ON DELETE)
FOREIGN_KEYS = {
    "fk_statement_line_run_id_incentive_run": ("statement_line", "run_id", "incentive_run", "CASCADE"),
    "fk_statement_line_staff_id_staff": ("statement_line", "staff_id", "staff", None),
    "fk_statement_line_branch_id_branch": ("statement_line", "branch_id", "branch", None),
    "fk_statement_line_campaign_id_campaign": ("statement_line", "campaign_id", "campaign", None),
    "fk_dispute_line_id_statement_line": ("dispute", "line_id", "statement_line", None),
}
#: parents whose rows may not be deleted while lines refer to them (incentive_run cascades instead)
RESTRICTED = ("staff_id", "branch_id", "campaign_id")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for name, (table, *_rest) in FOREIGN_KEYS.items():
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")
        for statement in _pg_functions():
            op.execute(statement)
        for statement in _pg_triggers():
            op.execute(statement)
    elif dialect == "sqlite":
        # dispute first: once it no longer refers to statement_line, that table can be rebuilt
        _sqlite_rebuild("dispute", drop=["fk_dispute_line_id_statement_line"])
        _sqlite_rebuild(
            "statement_line", drop=[n for n, fk in FOREIGN_KEYS.items() if fk[0] == "statement_line"]
        )
        for statement in _sqlite_triggers():
            op.execute(statement)
    else:  # pragma: no cover - only the two supported databases
        raise RuntimeError(f"no statement-line integrity triggers for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        for trigger, table in _pg_trigger_names():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in _pg_function_names():
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        for name, (table, column, parent, ondelete) in FOREIGN_KEYS.items():
            cascade = f" ON DELETE {ondelete}" if ondelete else ""
            op.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {parent} (id){cascade}"
            )
    elif dialect == "sqlite":
        for trigger, _table in _sqlite_trigger_names():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        _sqlite_rebuild(
            "statement_line", add=[n for n, fk in FOREIGN_KEYS.items() if fk[0] == "statement_line"]
        )
        _sqlite_rebuild("dispute", add=["fk_dispute_line_id_statement_line"])


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def _raise(message: str, *args: str, table: str, column: str | None = None, detail: str | None = None) -> str:
    """A plpgsql RAISE of SQLSTATE 23503 (foreign_key_violation), like the foreign key it replaces."""
    using = [
        "ERRCODE = '23503'",
        f"MESSAGE = format('{message}'{''.join(', ' + a for a in args)})",
        f"TABLE = '{table}'",
    ]
    if column:
        using.append(f"COLUMN = '{column}'")
    if detail:
        using.append(f"DETAIL = '{detail}'")
    return f"RAISE EXCEPTION USING {', '.join(using)};"


def _pg_parent_checks() -> str:
    """plpgsql: for each parent, lock the distinct rows ``new_rows`` names, in one statement, and refuse a missing one."""
    blocks = []
    for column, (parent, called) in PARENTS.items():
        refuse = _raise(
            f"statement_line.{column} = %s: there is no {called} with id %s",
            "missing",
            "missing",
            table="statement_line",
            column=column,
            detail="no line of this statement was written",
        )
        blocks.append(f"""
  WITH keys AS (SELECT DISTINCT {column} AS id FROM new_rows WHERE {column} IS NOT NULL),
       locked AS MATERIALIZED (
         SELECT p.id FROM {parent} p WHERE p.id IN (SELECT id FROM keys) FOR KEY SHARE OF p)
  SELECT k.id INTO missing FROM keys k WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.id = k.id) LIMIT 1;
  IF FOUND THEN
    {refuse}
  END IF;""")
    return "".join(blocks)


def _pg_read_committed(what: str) -> str:
    """plpgsql: refuse outside READ COMMITTED.

    The checks that must see rows a concurrent transaction committed while this one waited for a
    row lock (a parent's lines, a line's disputes) rely on READ COMMITTED giving each query a
    fresh snapshot. PostgreSQL's own foreign keys re-check with a newer snapshot in REPEATABLE
    READ and SERIALIZABLE; a trigger cannot, so there it refuses instead of risking a dangling
    reference. The application only uses READ COMMITTED.
    """
    refuse = (
        "RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = format("
        f"'{what} is refused in a %s transaction: statement-line integrity is checked in READ COMMITTED only', "
        "upper(current_setting('transaction_isolation')));"
    )
    return f"""
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    {refuse}
  END IF;"""


def _pg_disputed(lines: str) -> str:
    """plpgsql: refuse when a dispute refers to one of ``lines`` (a query giving line ids)."""
    refuse = _raise(
        "statement line %s is disputed (dispute.line_id): disputed lines are kept",
        "disputed",
        table="statement_line",
        detail="no line of this statement was deleted or changed",
    )
    return f"""
  SELECT d.line_id INTO disputed FROM dispute d WHERE d.line_id IN ({lines}) LIMIT 1 FOR KEY SHARE OF d;
  IF FOUND THEN
    {refuse}
  END IF;"""


def _pg_functions() -> list[str]:
    vanished = "SELECT o.id FROM old_rows o WHERE NOT EXISTS (SELECT 1 FROM new_rows n WHERE n.id = o.id)"
    refuse_truncate_lines = _raise(
        "statement_line cannot be truncated while disputes refer to its lines: truncate dispute with it",
        table="statement_line",
    )
    refuse_truncate_parent = _raise(
        "%s cannot be truncated while statement lines refer to it: truncate statement_line with it",
        "TG_TABLE_NAME",
        table="statement_line",
    )
    refuse_dispute = _raise(
        "dispute.line_id = %s: there is no statement line with id %s",
        "NEW.line_id",
        "NEW.line_id",
        table="dispute",
        column="line_id",
    )
    out = [
        # INSERT on statement_line: one check per statement over the new lines
        f"""CREATE OR REPLACE FUNCTION statement_line_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE missing bigint;
BEGIN{_pg_parent_checks()}
  RETURN NULL;
END $$""",
        # UPDATE on statement_line (the application never updates lines; the rules hold anyway)
        f"""CREATE OR REPLACE FUNCTION statement_line_check_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE missing bigint; disputed bigint;
BEGIN{_pg_parent_checks()}
  IF EXISTS ({vanished}) THEN{_pg_read_committed("renumbering statement lines")}{_pg_disputed(vanished)}
  END IF;
  RETURN NULL;
END $$""",
        # DELETE on statement_line: one look-up in dispute per statement
        f"""CREATE OR REPLACE FUNCTION statement_line_check_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE disputed bigint;
BEGIN
  IF EXISTS (SELECT 1 FROM old_rows) THEN{_pg_read_committed("deleting statement lines")}{_pg_disputed("SELECT o.id FROM old_rows o")}
  END IF;
  RETURN NULL;
END $$""",
        # TRUNCATE of statement_line alone while disputes exist (a foreign key refuses it too)
        f"""CREATE OR REPLACE FUNCTION statement_line_check_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_pg_read_committed("TRUNCATE of statement_line")}
  IF EXISTS (SELECT 1 FROM dispute) THEN
    {refuse_truncate_lines}
  END IF;
  RETURN NULL;
END $$""",
        # deleting an incentive run deletes its lines (was ON DELETE CASCADE)
        f"""CREATE OR REPLACE FUNCTION incentive_run_delete_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_pg_read_committed("deleting an incentive run")}
  DELETE FROM statement_line WHERE run_id = OLD.id;
  RETURN NULL;
END $$""",
        # TRUNCATE of a parent alone while lines exist (after it, every line would point nowhere)
        f"""CREATE OR REPLACE FUNCTION statement_line_parent_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_pg_read_committed("TRUNCATE of a table statement lines refer to")}
  IF EXISTS (SELECT 1 FROM statement_line) THEN
    {refuse_truncate_parent}
  END IF;
  RETURN NULL;
END $$""",
        # dispute.line_id: one row check per dispute written (disputes are few)
        f"""CREATE OR REPLACE FUNCTION dispute_check_line() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM statement_line l WHERE l.id = NEW.line_id FOR KEY SHARE OF l;
  IF NOT FOUND THEN
    {refuse_dispute}
  END IF;
  RETURN NULL;
END $$""",
    ]
    # a parent row that lines refer to is neither deleted nor renumbered (BEFORE row trigger: it runs
    # once the row is locked, so after any line insert holding KEY SHARE on it has committed)
    for column, (parent, called) in PARENTS.items():
        refuse = _raise(
            f"{called} %s is referred to by statement lines (statement_line.{column}): it cannot be %s",
            "OLD.id",
            "CASE TG_OP WHEN 'DELETE' THEN 'deleted' ELSE 'renumbered' END",
            table=parent,
        )
        guard = _pg_read_committed(f"deleting or renumbering a row of {parent}")
        out.append(f"""CREATE OR REPLACE FUNCTION {parent}_keep_statement_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{guard}
  PERFORM 1 FROM statement_line l WHERE l.{column} = OLD.id LIMIT 1 FOR KEY SHARE OF l;
  IF FOUND THEN
    {refuse}
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END $$""")
    return out


def _pg_function_names() -> list[str]:
    return [
        "statement_line_check_insert",
        "statement_line_check_update",
        "statement_line_check_delete",
        "statement_line_check_truncate",
        "incentive_run_delete_lines",
        "statement_line_parent_truncated",
        "dispute_check_line",
        *(f"{parent}_keep_statement_lines" for parent, _ in PARENTS.values()),
    ]


def _pg_triggers() -> list[str]:
    out = [
        "CREATE TRIGGER statement_line_check_insert AFTER INSERT ON statement_line "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION statement_line_check_insert()",
        "CREATE TRIGGER statement_line_check_update AFTER UPDATE ON statement_line "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION statement_line_check_update()",
        "CREATE TRIGGER statement_line_check_delete AFTER DELETE ON statement_line "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION statement_line_check_delete()",
        "CREATE TRIGGER statement_line_check_truncate AFTER TRUNCATE ON statement_line "
        "FOR EACH STATEMENT EXECUTE FUNCTION statement_line_check_truncate()",
        "CREATE TRIGGER incentive_run_delete_lines AFTER DELETE ON incentive_run "
        "FOR EACH ROW EXECUTE FUNCTION incentive_run_delete_lines()",
        "CREATE TRIGGER dispute_check_line_insert AFTER INSERT ON dispute "
        "FOR EACH ROW EXECUTE FUNCTION dispute_check_line()",
        "CREATE TRIGGER dispute_check_line_update AFTER UPDATE OF line_id ON dispute "
        "FOR EACH ROW WHEN (OLD.line_id IS DISTINCT FROM NEW.line_id) EXECUTE FUNCTION dispute_check_line()",
    ]
    for column, (parent, _called) in PARENTS.items():
        if column in RESTRICTED:
            out.append(
                f"CREATE TRIGGER {parent}_keep_statement_lines BEFORE DELETE ON {parent} "
                f"FOR EACH ROW EXECUTE FUNCTION {parent}_keep_statement_lines()"
            )
        out.append(
            f"CREATE TRIGGER {parent}_keep_statement_line_ids BEFORE UPDATE OF id ON {parent} "
            f"FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION {parent}_keep_statement_lines()"
        )
        out.append(
            f"CREATE TRIGGER {parent}_truncate_statement_lines AFTER TRUNCATE ON {parent} "
            "FOR EACH STATEMENT EXECUTE FUNCTION statement_line_parent_truncated()"
        )
    return out


def _pg_trigger_names() -> list[tuple[str, str]]:
    out = [
        ("statement_line_check_insert", "statement_line"),
        ("statement_line_check_update", "statement_line"),
        ("statement_line_check_delete", "statement_line"),
        ("statement_line_check_truncate", "statement_line"),
        ("incentive_run_delete_lines", "incentive_run"),
        ("dispute_check_line_insert", "dispute"),
        ("dispute_check_line_update", "dispute"),
    ]
    for parent, _called in PARENTS.values():
        out += [
            (f"{parent}_keep_statement_lines", parent),
            (f"{parent}_keep_statement_line_ids", parent),
            (f"{parent}_truncate_statement_lines", parent),
        ]
    return out


# ---------------------------------------------------------------------------------------------
# SQLite


def _sqlite_rebuild(table: str, drop: list[str] | None = None, add: list[str] | None = None) -> None:
    """Rebuild ``table`` without the foreign keys ``drop`` / with the foreign keys ``add`` (batch mode)."""
    present = {fk["name"] for fk in sa.inspect(op.get_bind()).get_foreign_keys(table)}
    drop = [name for name in drop or [] if name in present]
    add = [name for name in add or [] if name not in present]
    if not drop and not add:
        return
    with op.batch_alter_table(table, recreate="always") as batch:
        for name in drop:
            batch.drop_constraint(name, type_="foreignkey")
        for name in add:
            _table, column, parent, ondelete = FOREIGN_KEYS[name]
            batch.create_foreign_key(name, parent, [column], ["id"], ondelete=ondelete)


def _sqlite_triggers() -> list[str]:
    def parent_checks() -> str:
        return "".join(
            f"\n  SELECT RAISE(ABORT, 'statement_line.{column}: there is no {called} with this id') "
            f"WHERE NEW.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {parent} WHERE id = NEW.{column});"
            for column, (parent, called) in PARENTS.items()
        )

    columns = ", ".join(PARENTS)
    out = [
        f"CREATE TRIGGER statement_line_check_insert BEFORE INSERT ON statement_line FOR EACH ROW BEGIN{parent_checks()}\nEND",
        f"CREATE TRIGGER statement_line_check_update BEFORE UPDATE OF {columns} ON statement_line "
        f"FOR EACH ROW BEGIN{parent_checks()}\nEND",
        "CREATE TRIGGER statement_line_check_delete BEFORE DELETE ON statement_line FOR EACH ROW "
        "WHEN EXISTS (SELECT 1 FROM dispute WHERE line_id = OLD.id) BEGIN "
        "SELECT RAISE(ABORT, 'statement line is disputed (dispute.line_id): disputed lines are kept'); END",
        "CREATE TRIGGER statement_line_check_id BEFORE UPDATE OF id ON statement_line FOR EACH ROW "
        "WHEN OLD.id IS NOT NEW.id AND EXISTS (SELECT 1 FROM dispute WHERE line_id = OLD.id) BEGIN "
        "SELECT RAISE(ABORT, 'statement line is disputed (dispute.line_id): disputed lines are kept'); END",
        "CREATE TRIGGER incentive_run_delete_lines AFTER DELETE ON incentive_run FOR EACH ROW BEGIN "
        "DELETE FROM statement_line WHERE run_id = OLD.id; END",
        "CREATE TRIGGER dispute_check_line_insert BEFORE INSERT ON dispute FOR EACH ROW "
        "WHEN NEW.line_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM statement_line WHERE id = NEW.line_id) BEGIN "
        "SELECT RAISE(ABORT, 'dispute.line_id: there is no statement line with this id'); END",
        "CREATE TRIGGER dispute_check_line_update BEFORE UPDATE OF line_id ON dispute FOR EACH ROW "
        "WHEN NEW.line_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM statement_line WHERE id = NEW.line_id) BEGIN "
        "SELECT RAISE(ABORT, 'dispute.line_id: there is no statement line with this id'); END",
    ]
    for column, (parent, called) in PARENTS.items():
        refused = f"{called} is referred to by statement lines (statement_line.{column})"
        if column in RESTRICTED:
            out.append(
                f"CREATE TRIGGER {parent}_keep_statement_lines BEFORE DELETE ON {parent} FOR EACH ROW "
                f"WHEN EXISTS (SELECT 1 FROM statement_line WHERE {column} = OLD.id) BEGIN "
                f"SELECT RAISE(ABORT, '{refused}: it cannot be deleted'); END"
            )
        out.append(
            f"CREATE TRIGGER {parent}_keep_statement_line_ids BEFORE UPDATE OF id ON {parent} FOR EACH ROW "
            f"WHEN OLD.id IS NOT NEW.id AND EXISTS (SELECT 1 FROM statement_line WHERE {column} = OLD.id) BEGIN "
            f"SELECT RAISE(ABORT, '{refused}: it cannot be renumbered'); END"
        )
    return out


def _sqlite_trigger_names() -> list[tuple[str, str]]:
    out = [
        ("statement_line_check_insert", "statement_line"),
        ("statement_line_check_update", "statement_line"),
        ("statement_line_check_delete", "statement_line"),
        ("statement_line_check_id", "statement_line"),
        ("incentive_run_delete_lines", "incentive_run"),
        ("dispute_check_line_insert", "dispute"),
        ("dispute_check_line_update", "dispute"),
    ]
    for column, (parent, _called) in PARENTS.items():
        if column in RESTRICTED:
            out.append((f"{parent}_keep_statement_lines", parent))
        out.append((f"{parent}_keep_statement_line_ids", parent))
    return out
