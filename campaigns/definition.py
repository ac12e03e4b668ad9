"""A campaign's definition: the one structure behind the YAML file (PRODUCT.md §8) and the web editor.

``parse_definition(data, lookup)`` checks a dict in the YAML shape and returns a
:class:`Definition`, or raises :class:`DefinitionErrors` listing *every* problem with its path in
the document (``rules[2].kind``), what was expected there and what was found. Nothing is stored
by parsing. ``apply_definition(session, defn, campaign=None)`` creates or updates a draft
campaign from a parsed definition (only drafts are editable); ``export_definition(campaign)``
gives the dict back, so ``dump_yaml(export_definition(apply(parse(load_yaml(text)))))`` is the
canonical form of the file and reloading it changes nothing.

References to the database (staff numbers, branch codes, codes already taken) go through a
:class:`Lookup`, so the structure can be checked without a database (:class:`MapLookup`) or
against it (:class:`DbLookup`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from campaigns import kinds
from campaigns.models import Campaign, CampaignState, Target
from org.models import Branch, Staff
from workflow.errors import WorkflowError

TOP_KEYS = (
    "code",
    "name",
    "kind",
    "owner",
    "branches",
    "period",
    "population",
    "targets",
    "tasks",
    "rules",
    "budget",
    "priority",
)
TARGET_KEYS = ("measure", "staff", "branch", "value", "split", "weights", "basis")
TASK_KEYS = ("kind", "title", "within_days", "every_days", "after")
SPLITS = ("by_headcount", "by_weight")
BASES = ("daily_average", "point_in_time")
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
_MISSING: Any = object()


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionError:
    """One problem: where in the document, what was expected there, what was found."""

    path: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, found {self.found}"

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "expected": self.expected, "found": self.found}


class DefinitionErrors(ValueError):
    """Every problem of a definition; the definition is refused whole and nothing is stored."""

    def __init__(self, errors: list[DefinitionError]) -> None:
        self.errors = list(errors)
        n = len(self.errors)
        super().__init__(
            f"{n} problem{'s' if n != 1 else ''} in the campaign definition:\n"
            + "\n".join(f"  {e}" for e in self.errors)
        )

    def to_list(self) -> list[dict[str, str]]:
        return [e.to_dict() for e in self.errors]

    def by_path(self) -> dict[str, list[str]]:
        """Messages keyed by path (for showing each beside its field in a form)."""
        out: dict[str, list[str]] = {}
        for e in self.errors:
            out.setdefault(e.path, []).append(f"expected {e.expected}, found {e.found}")
        return out


class NotEditable(WorkflowError):
    """Only a draft campaign can be edited (HTTP 409)."""

    def __init__(self, campaign: Campaign) -> None:
        from workflow.engine import available_triggers

        allowed = ", ".join(available_triggers(campaign)) or "none (final state)"
        self.state = campaign.state
        super().__init__(
            f"Cannot edit campaign {campaign.code}: it is {campaign.state}; only a draft can be edited "
            f"(allowed from {campaign.state}: {allowed})"
        )


def _found(value: Any) -> str:
    if value is _MISSING:
        return "nothing"
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, Decimal | int | dt.date):
        return str(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


class _Errors:
    def __init__(self) -> None:
        self.items: list[DefinitionError] = []

    def add(self, path: str, expected: str, found: Any) -> None:
        self.items.append(DefinitionError(path, expected, _found(found)))

    def __len__(self) -> int:
        return len(self.items)


# ------------------------------------------------------------------------------------------
# Lookups (what the definition refers to in the database)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffInfo:
    """What the checks need of a staff member."""

    staff_no: str
    branch: str  #: branch code
    roles: frozenset[str] = frozenset({"manager"})
    status: str = "active"
    director_branches: frozenset[str] | None = frozenset()  #: branch codes a director steers; None = union


class Lookup(Protocol):
    def staff(self, staff_no: str) -> StaffInfo | None: ...

    def branch_exists(self, code: str) -> bool: ...

    def code_taken(self, code: str) -> str | None:
        """A description of the campaign already using ``code``, or None."""
        ...


@dataclass
class MapLookup:
    """A lookup over plain data (tests, and checking a file without a database)."""

    staff_by_no: dict[str, StaffInfo] = field(default_factory=dict)
    branches: set[str] = field(default_factory=set)
    codes: dict[str, str] = field(default_factory=dict)

    def staff(self, staff_no: str) -> StaffInfo | None:
        return self.staff_by_no.get(staff_no)

    def branch_exists(self, code: str) -> bool:
        return code in self.branches

    def code_taken(self, code: str) -> str | None:
        return self.codes.get(code)


class DbLookup:
    """A lookup against the database; ``current`` is the campaign being edited (its code is its own)."""

    def __init__(self, session: Session, current: Campaign | None = None) -> None:
        self.session = session
        self.current = current
        self._branch_codes: dict[int, str] | None = None

    def _codes(self) -> dict[int, str]:
        if self._branch_codes is None:
            self._branch_codes = dict(self.session.execute(select(Branch.id, Branch.code)).all())
        return self._branch_codes

    def staff(self, staff_no: str) -> StaffInfo | None:
        from org.scope import Scope

        s = self.session.scalar(select(Staff).where(Staff.staff_no == staff_no))
        if s is None:
            return None
        codes = self._codes()
        director: frozenset[str] | None = frozenset()
        if any(r.role == "director" for r in s.roles):
            ids = Scope.of(self.session, s).branches_for("director")
            director = None if ids is None else frozenset(codes[i] for i in ids)
        return StaffInfo(
            s.staff_no, codes[s.branch_id], frozenset(r.role for r in s.roles), s.status, director
        )

    def branch_exists(self, code: str) -> bool:
        return code in self._codes().values()

    def code_taken(self, code: str) -> str | None:
        c = self.session.scalar(select(Campaign).where(Campaign.code == code))
        if c is None or (self.current is not None and c.id == self.current.id):
            return None
        return f"campaign {c.code} ({c.name}, {c.state}, {c.start_date}–{c.end_date})"


# ------------------------------------------------------------------------------------------
# The definition
# ------------------------------------------------------------------------------------------


@dataclass
class TargetDef:
    measure: str
    value: Decimal
    staff: str | None = None
    branch: str | None = None
    split: str | None = None
    weights: dict[str, Decimal] | None = None
    basis: str = "daily_average"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"measure": self.measure}
        if self.staff is not None:
            d["staff"] = self.staff
        if self.branch is not None:
            d["branch"] = self.branch
        d["value"] = self.value
        if self.split:
            d["split"] = self.split
        if self.weights:
            d["weights"] = dict(self.weights)
        if self.basis != "daily_average":
            d["basis"] = self.basis
        return d


@dataclass
class Definition:
    code: str
    name: str
    kind: str
    owner: str
    branches: list[str] | str  #: branch codes, or "all"
    start: dt.date
    end: dt.date
    population: dict[str, Any] = field(default_factory=dict)
    targets: list[TargetDef] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)  #: normalised (numbers as Decimal)
    rules_none: bool = False
    budget: Decimal | None = None
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The canonical YAML structure (key order of PRODUCT.md §8)."""
        d: dict[str, Any] = {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "owner": self.owner,
            "branches": self.branches if isinstance(self.branches, str) else list(self.branches),
            "period": {"start": self.start, "end": self.end},
            "population": self.population,
            "targets": [t.to_dict() for t in self.targets],
            "tasks": [dict(t) for t in self.tasks],
            "rules": "none" if self.rules_none and not self.rules else [dict(r) for r in self.rules],
        }
        if self.budget is not None:
            d["budget"] = self.budget
        if self.priority:
            d["priority"] = self.priority
        return d


# ------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------


def _number(
    errs: _Errors, path: str, value: Any, *, money: bool = True, minimum: Decimal | None = Decimal(0)
) -> Decimal | None:
    what = "an amount with at most two decimals" if money else "a number"
    if minimum is not None:
        what += f" of at least {minimum}"
    number: Decimal | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite() or (minimum is not None and number < minimum):
        errs.add(path, what, value)
        return None
    if money and number != number.quantize(Decimal("0.01")):
        errs.add(path, "an amount with at most two decimals", value)
        return None
    return number


def _date(errs: _Errors, path: str, value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    errs.add(path, "a date YYYY-MM-DD", value)
    return None


def _int(errs: _Errors, path: str, value: Any, minimum: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        errs.add(path, f"a whole number of at least {minimum}", value)
        return None
    try:
        n = Decimal(str(value).strip())
    except InvalidOperation:
        errs.add(path, f"a whole number of at least {minimum}", value)
        return None
    if n != n.to_integral_value() or n < minimum:
        errs.add(path, f"a whole number of at least {minimum}", value)
        return None
    return int(n)


def _unknown_keys(
    errs: _Errors, data: Mapping[str, Any], path: str, allowed: tuple[str, ...], what: str
) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            errs.add(where, f"no key '{key}' in {what} (allowed: {', '.join(allowed)})", data[key])


def parse_definition(data: Any, lookup: Lookup | None = None) -> Definition:
    """Check ``data`` (the YAML structure) and return the definition, or raise DefinitionErrors with every problem.

    Without a ``lookup`` the references (owner, branches, staff, codes taken) are not checked.
    """
    errs = _Errors()
    if not isinstance(data, Mapping):
        errs.add("(document)", "a mapping with code, name, kind, owner, branches, period, …", data)
        raise DefinitionErrors(errs.items)
    _unknown_keys(errs, data, "", TOP_KEYS, "a campaign")

    code = data.get("code", _MISSING)
    if not isinstance(code, str) or not _CODE.match(code):
        errs.add("code", "a code of letters, digits, '_', '.' or '-' (at most 40), e.g. DEP-2027-01", code)
        code = ""
    elif lookup is not None and (taken := lookup.code_taken(code)):
        errs.add("code", f"a code no other campaign uses (already used by {taken})", code)

    name = data.get("name", _MISSING)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        errs.add("name", "a name of 1 to 200 characters", name)
        name = ""

    kind = data.get("kind", _MISSING)
    spec: kinds.KindSpec | None = None
    if isinstance(kind, str) and kind in kinds.KINDS:
        spec = kinds.KINDS[kind]
    else:
        errs.add("kind", "one of " + ", ".join(kinds.KINDS), kind)
        kind = ""

    branches = _parse_branches(errs, data.get("branches", _MISSING), lookup)

    owner = data.get("owner", _MISSING)
    if not isinstance(owner, str) or not owner.strip():
        errs.add("owner", "the staff_no of a director", owner)
        owner = ""
    elif lookup is not None:
        info = lookup.staff(owner)
        if info is None:
            errs.add("owner", "the staff_no of a director (no staff member has this number)", owner)
        elif "director" not in info.roles:
            errs.add("owner", "the staff_no of a director (this staff member is not a director)", owner)
        elif info.status != "active":
            errs.add("owner", "an active director", f"{owner} ({info.status})")
        elif info.director_branches is not None and branches is not None:
            outside = ["all"] if branches == "all" else sorted(set(branches) - set(info.director_branches))
            if outside:
                errs.add(
                    "owner",
                    "a director whose scope covers every branch of the campaign",
                    f"{owner} (not over {', '.join(outside)})",
                )

    start = end = None
    period = data.get("period", _MISSING)
    if not isinstance(period, Mapping):
        errs.add("period", "a mapping {start: YYYY-MM-DD, end: YYYY-MM-DD}", period)
    else:
        _unknown_keys(errs, period, "period", ("start", "end"), "a period")
        start = _date(errs, "period.start", period.get("start", _MISSING))
        end = _date(errs, "period.end", period.get("end", _MISSING))
        if start and end and end < start:
            errs.add("period.end", f"an end on or after the start {start.isoformat()}", end)

    population = _parse_population(errs, data.get("population", {}))
    targets = _parse_targets(errs, data.get("targets", []), branches, lookup)
    tasks = _parse_tasks(errs, data.get("tasks", _MISSING), spec)
    rules, rules_none = _parse_rules(errs, data.get("rules", []))

    hooks = spec.hooks() if spec is not None else None
    if hooks is not None and hasattr(hooks, "check_definition"):
        for path, expected, found in hooks.check_definition(data):
            errs.add(path, expected, found)

    budget = None
    if data.get("budget") is not None:
        budget = _number(errs, "budget", data["budget"])
    priority = 0
    if data.get("priority") is not None:
        priority = _int(errs, "priority", data["priority"], 0) or 0

    if errs.items:
        raise DefinitionErrors(errs.items)
    assert start is not None and end is not None and branches is not None
    return Definition(
        code=code,
        name=name.strip(),
        kind=kind,
        owner=owner,
        branches=branches,
        start=start,
        end=end,
        population=population,
        targets=targets,
        tasks=tasks,
        rules=rules,
        rules_none=rules_none,
        budget=budget,
        priority=priority,
    )


def _parse_branches(errs: _Errors, value: Any, lookup: Lookup | None) -> list[str] | str | None:
    if value == "all":
        return "all"
    if not isinstance(value, list | tuple) or not value:
        errs.add("branches", "a list of branch codes, or: all", value)
        return None
    out: list[str] = []
    ok = True
    for i, code in enumerate(value):
        if not isinstance(code, str):
            errs.add(f"branches[{i}]", "a branch code", code)
            ok = False
        elif code in out:
            errs.add(f"branches[{i}]", "each branch once", code)
            ok = False
        elif lookup is not None and not lookup.branch_exists(code):
            errs.add(f"branches[{i}]", "the code of an existing branch", code)
            ok = False
        else:
            out.append(code)
    return out if ok else None


_LIST_FILTERS = (
    "tags_any",
    "tags_all",
    "tier_in",
    "type_in",
    "occupation_in",
    "grid_in",
    "customer_nos",
    "manager_in",
)
_INT_FILTERS = ("age_min", "age_max")


def _parse_population(errs: _Errors, value: Any) -> dict[str, Any]:
    from campaigns.population import FILTER_KEYS

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errs.add("population", "a mapping such as {customers: {tags_any: [...]}}", value)
        return {}
    allowed = ("customers",)
    _unknown_keys(errs, value, "population", allowed, "a population")
    spec = value.get("customers", {})
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        errs.add(
            "population.customers", "a mapping of filters (" + ", ".join(sorted(FILTER_KEYS)) + ")", spec
        )
        return {}
    out: dict[str, Any] = {}
    keys = tuple(sorted(FILTER_KEYS))
    for key, v in spec.items():
        path = f"population.customers.{key}"
        if key not in FILTER_KEYS:
            errs.add(path, f"no filter '{key}' (known: {', '.join(keys)})", v)
        elif key in _LIST_FILTERS:
            if not isinstance(v, list | tuple) or not v or not all(isinstance(x, str) and x for x in v):
                errs.add(path, "a non-empty list of words", v)
            else:
                out[key] = list(v)
        elif key in _INT_FILTERS:
            n = _int(errs, path, v, 0)
            if n is not None:
                out[key] = n
        elif key == "is_key":
            if not isinstance(v, bool):
                errs.add(path, "true or false", v)
            else:
                out[key] = v
        else:  # area, gender, has_holding, no_holding
            if not isinstance(v, str) or not v:
                errs.add(path, "a word", v)
            else:
                out[key] = v
    if "age_min" in out and "age_max" in out and out["age_max"] < out["age_min"]:
        errs.add(
            "population.customers.age_max", f"an age of at least age_min {out['age_min']}", out["age_max"]
        )
    return {"customers": out}


def _parse_targets(
    errs: _Errors, value: Any, branches: list[str] | str | None, lookup: Lookup | None
) -> list[TargetDef]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        errs.add("targets", "a list of targets {measure, staff or branch, value}", value)
        return []
    known = kinds.known_measures()
    out: list[TargetDef] = []
    seen: dict[tuple[str, str, str], int] = {}
    for i, item in enumerate(value):
        path = f"targets[{i}]"
        if not isinstance(item, Mapping):
            errs.add(path, "a mapping {measure, staff or branch, value}", item)
            continue
        before = len(errs)
        _unknown_keys(errs, item, path, TARGET_KEYS, "a target")
        measure = item.get("measure", _MISSING)
        if not isinstance(measure, str) or measure not in known:
            errs.add(f"{path}.measure", "one of the known measures: " + ", ".join(sorted(known)), measure)
        staff, branch = item.get("staff"), item.get("branch")
        who: tuple[str, str] | None = None
        if (staff is None) == (branch is None):
            errs.add(
                path,
                "exactly one of staff (a staff_no) or branch (a branch code)",
                "both" if staff is not None else "neither",
            )
        elif staff is not None:
            if not isinstance(staff, str):
                errs.add(f"{path}.staff", "a staff_no", staff)
            elif lookup is not None:
                info = lookup.staff(staff)
                if info is None:
                    errs.add(
                        f"{path}.staff",
                        "the staff_no of a staff member (no staff member has this number)",
                        staff,
                    )
                elif isinstance(branches, list) and info.branch not in branches:
                    errs.add(
                        f"{path}.staff",
                        f"a staff member of the campaign's branches ({', '.join(branches)})",
                        f"{staff} of {info.branch}",
                    )
                else:
                    who = ("staff", staff)
            else:
                who = ("staff", staff)
        else:
            if not isinstance(branch, str):
                errs.add(f"{path}.branch", "a branch code", branch)
            elif isinstance(branches, list) and branch not in branches:
                errs.add(f"{path}.branch", f"one of the campaign's branches ({', '.join(branches)})", branch)
            elif lookup is not None and not lookup.branch_exists(branch):
                errs.add(f"{path}.branch", "the code of an existing branch", branch)
            else:
                who = ("branch", branch)
        val = _number(errs, f"{path}.value", item.get("value", _MISSING))
        split = item.get("split")
        if split is not None:
            if split not in SPLITS:
                errs.add(f"{path}.split", "by_headcount or by_weight", split)
            elif staff is not None:
                errs.add(
                    f"{path}.split",
                    "no split on a staff member's own target (split is for branch targets)",
                    split,
                )
        weights: dict[str, Decimal] | None = None
        raw_w = item.get("weights")
        if split == "by_weight" and branch is not None:
            if not isinstance(raw_w, Mapping) or not raw_w:
                errs.add(f"{path}.weights", "a mapping staff_no → weight for split by_weight", raw_w)
            else:
                weights = {}
                for no, w in raw_w.items():
                    wn = _number(errs, f"{path}.weights.{no}", w, money=False, minimum=Decimal(0))
                    if lookup is not None:
                        info = lookup.staff(str(no))
                        if info is None or info.branch != branch:
                            errs.add(f"{path}.weights.{no}", f"a staff_no of branch {branch}", no)
                    if wn is not None:
                        weights[str(no)] = wn
        elif raw_w is not None:
            errs.add(f"{path}.weights", "weights only with split: by_weight", raw_w)
        basis = item.get("basis", "daily_average")
        if basis not in BASES:
            errs.add(f"{path}.basis", "daily_average (日均) or point_in_time (时点)", basis)
        if who is not None and isinstance(measure, str):
            key = (measure, *who)
            if key in seen:
                errs.add(
                    path,
                    f"one target per measure and {who[0]} (already at targets[{seen[key]}])",
                    f"{measure} for {who[1]}",
                )
            else:
                seen[key] = i
        if len(errs) == before and val is not None:
            out.append(
                TargetDef(
                    measure=str(measure),
                    value=val,
                    staff=staff,
                    branch=branch,
                    split=split,
                    weights=weights,
                    basis=str(basis),
                )
            )
    return out


def _parse_tasks(errs: _Errors, value: Any, spec: kinds.KindSpec | None) -> list[dict[str, Any]]:
    if value is _MISSING or value is None:
        return spec.default_tasks() if spec else []
    if not isinstance(value, list | tuple) or not value:
        errs.add("tasks", "a non-empty list of task templates {kind, within_days or every_days}", value)
        return []
    out: list[dict[str, Any]] = []
    names: list[str] = []
    for i, item in enumerate(value):
        path = f"tasks[{i}]"
        if not isinstance(item, Mapping):
            errs.add(path, "a mapping {kind, within_days or every_days}", item)
            continue
        _unknown_keys(errs, item, path, TASK_KEYS, "a task template")
        tpl: dict[str, Any] = {}
        k = item.get("kind", _MISSING)
        if not isinstance(k, str) or not _NAME.match(k):
            errs.add(
                f"{path}.kind", "a task kind in lower-case letters, digits and _ (e.g. contact, visit)", k
            )
        else:
            tpl["kind"] = k
        if "title" in item:
            if not isinstance(item["title"], str) or not item["title"].strip() or len(item["title"]) > 120:
                errs.add(f"{path}.title", "a title of 1 to 120 characters", item["title"])
            else:
                tpl["title"] = item["title"]
        if "within_days" in item:
            n = _int(errs, f"{path}.within_days", item["within_days"], 0)
            if n is not None:
                tpl["within_days"] = n
        if "every_days" in item:
            n = _int(errs, f"{path}.every_days", item["every_days"], 1)
            if n is not None:
                tpl["every_days"] = n
        if "after" in item:
            if item["after"] not in names:
                errs.add(
                    f"{path}.after",
                    "the kind of an earlier task template (" + (", ".join(names) or "none yet") + ")",
                    item["after"],
                )
            else:
                tpl["after"] = item["after"]
        if "within_days" not in item and "every_days" not in item:
            errs.add(path, "within_days (due after N days) or every_days (repeats every N days)", "neither")
        if isinstance(k, str):
            names.append(k)
        out.append(tpl)
    return out


def _parse_rules(errs: _Errors, value: Any) -> tuple[list[dict[str, Any]], bool]:
    if value == "none":
        return [], True
    if value is None:
        return [], False
    if not isinstance(value, list | tuple):
        errs.add("rules", "a list of reward rules, or: none", value)
        return [], False
    cleaned: list[Any] = []
    bases: list[str | None] = []
    for i, item in enumerate(value):
        if isinstance(item, Mapping) and "basis" in item:
            basis = item["basis"]
            if basis not in BASES:
                errs.add(f"rules[{i}].basis", "daily_average (日均) or point_in_time (时点)", basis)
            bases.append(basis if basis == "point_in_time" else None)
            item = {k: v for k, v in item.items() if k != "basis"}
        else:
            bases.append(None)
        cleaned.append(item)
    try:
        from appraisal.rules import RuleErrors, parse_rules
    except ImportError:  # pragma: no cover - the rule engine ships with the product
        return _fallback_rules(errs, cleaned), False
    try:
        parsed = parse_rules(cleaned, "rules")
    except RuleErrors as exc:
        for e in exc.errors:
            errs.items.append(DefinitionError(e.path, e.expected, e.found))
        return [], False
    out = []
    for rule, basis in zip(parsed, bases, strict=True):
        d = rule.to_dict()
        if basis:
            d["basis"] = basis
        out.append(d)
    return out, False


def _fallback_rules(errs: _Errors, items: list[Any]) -> list[dict[str, Any]]:
    known_kinds = ("piece_rate", "percentage", "tiered", "attainment_bonus", "penalty", "bounty", "pool")
    known = kinds.known_measures()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            errs.add(f"rules[{i}]", "a mapping with id, kind, measure", item)
            continue
        if item.get("kind") not in known_kinds:
            errs.add(f"rules[{i}].kind", "one of " + ", ".join(known_kinds), item.get("kind", _MISSING))
        if "measure" in item and item["measure"] not in known:
            errs.add(f"rules[{i}].measure", "a known measure", item["measure"])
    return [dict(i) for i in items if isinstance(i, Mapping)]


# ------------------------------------------------------------------------------------------
# Applying and exporting
# ------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def apply_definition(session: Session, defn: Definition, campaign: Campaign | None = None) -> Campaign:
    """Create a draft campaign from ``defn``, or update ``campaign`` (a draft) to it. Flushes.

    Raises :class:`NotEditable` when ``campaign`` is not a draft. References must have been
    checked by :func:`parse_definition` with a :class:`DbLookup`.
    """
    if campaign is not None and campaign.state != CampaignState.draft:
        raise NotEditable(campaign)
    staff_ids = dict(session.execute(select(Staff.staff_no, Staff.id)).all())
    branch_rows = {b.code: b for b in session.scalars(select(Branch))}
    if campaign is None:
        campaign = Campaign(state=CampaignState.draft)
        session.add(campaign)
    campaign.code = defn.code
    campaign.name = defn.name
    campaign.kind = defn.kind
    campaign.owner_id = staff_ids[defn.owner]
    campaign.all_branches = defn.branches == "all"
    campaign.branches = [] if defn.branches == "all" else [branch_rows[c] for c in defn.branches]
    campaign.start_date = defn.start
    campaign.end_date = defn.end
    campaign.population = _jsonable(defn.population)
    campaign.task_templates = _jsonable(defn.tasks)
    campaign.rules = _jsonable(defn.rules)
    campaign.rules_none = defn.rules_none
    campaign.budget = defn.budget
    campaign.priority = defn.priority
    campaign.targets.clear()
    session.flush()
    for t in defn.targets:
        campaign.targets.append(
            Target(
                measure=t.measure,
                staff_id=staff_ids[t.staff] if t.staff else None,
                branch_id=branch_rows[t.branch].id if t.branch else None,
                value=t.value,
                split=t.split,
                weights=_jsonable(t.weights) if t.weights else None,
                basis=t.basis,
            )
        )
    session.flush()
    return campaign


def load_definition(session: Session, data: Any, campaign: Campaign | None = None) -> Campaign:
    """Check ``data`` against the database and create (or update the draft ``campaign``). Flushes.

    Raises :class:`NotEditable` or :class:`DefinitionErrors` (nothing stored)."""
    if campaign is not None and campaign.state != CampaignState.draft:
        raise NotEditable(campaign)
    defn = parse_definition(data, DbLookup(session, campaign))
    return apply_definition(session, defn, campaign)


def definition_of(campaign: Campaign) -> Definition:
    """The definition a stored campaign was made from."""
    session = object_session(campaign)
    assert session is not None, "the campaign must belong to a session"
    staff_nos: dict[int, str] = {}
    ids = {t.staff_id for t in campaign.targets if t.staff_id} | {campaign.owner_id}
    if ids:
        staff_nos = dict(session.execute(select(Staff.id, Staff.staff_no).where(Staff.id.in_(ids))).all())
    codes = dict(session.execute(select(Branch.id, Branch.code)).all())
    rules: list[dict[str, Any]] = []
    try:
        from appraisal.rules import parse_rule

        for i, r in enumerate(campaign.rules or []):
            basis = r.get("basis")
            d = parse_rule({k: v for k, v in r.items() if k != "basis"}, f"rules[{i}]").to_dict()
            if basis == "point_in_time":
                d["basis"] = basis
            rules.append(d)
    except ImportError:  # pragma: no cover
        rules = [dict(r) for r in campaign.rules or []]
    targets = [
        TargetDef(
            measure=t.measure,
            value=Decimal(t.value),
            staff=staff_nos.get(t.staff_id) if t.staff_id else None,
            branch=codes.get(t.branch_id) if t.branch_id else None,
            split=t.split,
            weights={k: Decimal(str(v)) for k, v in t.weights.items()} if t.weights else None,
            basis=t.basis or "daily_average",
        )
        for t in campaign.targets
    ]
    return Definition(
        code=campaign.code,
        name=campaign.name,
        kind=campaign.kind,
        owner=staff_nos[campaign.owner_id],
        branches="all" if campaign.all_branches else [b.code for b in campaign.branches],
        start=campaign.start_date,
        end=campaign.end_date,
        population=dict(campaign.population or {}),
        targets=targets,
        tasks=[dict(t) for t in campaign.task_templates or []] or _kind_tasks(campaign.kind),
        rules=rules,
        rules_none=bool(campaign.rules_none),
        budget=Decimal(campaign.budget) if campaign.budget is not None else None,
        priority=campaign.priority or 0,
    )


def export_definition(campaign: Campaign) -> dict[str, Any]:
    """The campaign as the YAML structure of PRODUCT.md §8 (loading it back gives the same campaign)."""
    return definition_of(campaign).to_dict()


# ------------------------------------------------------------------------------------------
# YAML: numbers with a fraction are read as Decimal (money is never a binary fraction)
# ------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    pass


def _decimal_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")  # type: ignore[arg-type]
    try:
        return Decimal(text)
    except InvalidOperation:  # .inf / .nan
        return text


_Loader.add_constructor("tag:yaml.org,2002:float", _decimal_constructor)


class _Dumper(yaml.SafeDumper):
    pass


def _decimal_representer(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value.normalize(), "f")
    if "." in text:
        return dumper.represent_scalar("tag:yaml.org,2002:float", text)
    return dumper.represent_scalar("tag:yaml.org,2002:int", text)


_Dumper.add_representer(Decimal, _decimal_representer)


def load_yaml(text: str) -> Any:
    """Parse campaign YAML; fractions become Decimal. Raises DefinitionErrors on a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionErrors([DefinitionError(where, "well-formed YAML", str(problem))]) from None


def dump_yaml(data: Any) -> str:
    """Write the structure as YAML (Chinese kept readable, keys in the canonical order)."""
    return yaml.dump(
        data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, default_flow_style=None, width=110
    )


def _kind_tasks(kind: str) -> list[dict[str, Any]]:
    """A campaign stored without task templates gets its kind's defaults on export (or none)."""
    spec = kinds.KINDS.get(kind)
    return spec.default_tasks() if spec else []
