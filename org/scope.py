"""Scopes: which rows a person may see and what they may do (PRODUCT.md §1).

Every list, fetch and export goes through here. A fetch outside the caller's scope behaves like a
missing row (:class:`NotFound`), so guessing an id reveals nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import false, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from org.models import Branch, Role, Staff


class NotFound(LookupError):
    """No such row in the caller's scope (404)."""

    http_status = 404


class Forbidden(PermissionError):
    """The caller's role may not do this (403)."""

    http_status = 403


@dataclass(frozen=True)
class Scope:
    """What one logged-in person may reach: their roles and, per role, the branches (None = union)."""

    staff_id: int
    branch_id: int
    roles: frozenset[str]
    role_branches: dict[str, frozenset[int] | None]

    @classmethod
    def of(cls, session: Session, staff: Staff) -> Scope:
        role_branches: dict[str, set[int] | None] = {}
        for r in staff.roles:
            if r.branch_id is None:
                role_branches[r.role] = None
            elif role_branches.get(r.role, set()) is not None:
                role_branches.setdefault(r.role, set()).add(r.branch_id)  # type: ignore[union-attr]
        frozen = {k: (frozenset(v) if v is not None else None) for k, v in role_branches.items()}
        # a branch director also directs the branches below theirs
        for role, branches in list(frozen.items()):
            if branches:
                frozen[role] = frozenset(_with_children(session, set(branches)))
        return cls(staff.id, staff.branch_id, frozenset(frozen), frozen)

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def require(self, *roles: str) -> None:
        if not self.has(*roles):
            raise Forbidden("This needs the role " + " or ".join(roles))

    def branches_for(self, *roles: str) -> frozenset[int] | None:
        """Branch ids reachable through any of ``roles``; None means the whole union."""
        found: set[int] = set()
        for role in roles:
            if role in self.role_branches:
                b = self.role_branches[role]
                if b is None:
                    return None
                found |= b
        return frozenset(found)

    @property
    def is_union_wide(self) -> bool:
        return self.branches_for(Role.admin, Role.director, Role.checker) is None

    def branch_filter(self, column: ColumnElement[int], *roles: str) -> ColumnElement[bool]:
        """A WHERE clause limiting ``column`` (a branch id) to the branches of ``roles``."""
        roles = roles or (Role.admin, Role.director, Role.checker)
        if not self.has(*roles):
            return false()
        branches = self.branches_for(*roles)
        return true() if branches is None else column.in_(sorted(branches))

    def can_see_branch(self, branch_id: int, *roles: str) -> bool:
        roles = roles or (Role.admin, Role.director, Role.checker)
        if not self.has(*roles):
            return False
        branches = self.branches_for(*roles)
        return branches is None or branch_id in branches

    def staff_filter(self, branch_col: ColumnElement[int], staff_col: ColumnElement[int]) -> ColumnElement[bool]:
        """Rows owned by staff: directors/checkers/admins by branch; managers only their own."""
        clauses = []
        if self.has(Role.admin, Role.director, Role.checker):
            clauses.append(self.branch_filter(branch_col))
        if self.has(Role.manager):
            clauses.append(staff_col == self.staff_id)
        return or_(*clauses) if clauses else false()


def _with_children(session: Session, branch_ids: set[int]) -> set[int]:
    rows = session.execute(select(Branch.id, Branch.parent_id)).all()
    children: dict[int, list[int]] = {}
    for bid, parent in rows:
        if parent is not None:
            children.setdefault(parent, []).append(bid)
    out, todo = set(branch_ids), list(branch_ids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out
