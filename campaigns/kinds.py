"""Campaign kinds as configuration (PRODUCT.md §3).

Each kind is one :class:`KindSpec` entry in :data:`KINDS`: its labels, what is assigned, a
suggested population, its default task templates (what each assignment creates and at which
cadence), its measures and its default reward rules. Adding a kind is one
:func:`register_kind` call (plus, where needed, one module named in ``module`` that the engine
may import for kind-specific behaviour). No other code tests for a kind by name.

Task templates are dicts as written in campaign YAML::

    {kind: contact, within_days: 7}            # first task, due 7 days after the start
    {kind: follow_up, every_days: 14}          # repeats every 14 days
    {kind: negotiate, after: contact_finance_office, within_days: 14}   # a step after another

Rules are dicts in the YAML shape of :mod:`appraisal.rules` (numbers as text so they survive
JSON). Everything returned is a fresh copy: callers may edit it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

#: Measures that campaign kinds count beyond the ones appraisal.rules knows (name, unit, en, zh).
EXTRA_MEASURES: tuple[tuple[str, str, str, str], ...] = (
    ("visits", "count", "visits", "走访次数"),
    ("contacts", "count", "contacts", "接触客户数"),
    ("leads", "count", "leads", "意向客户数"),
    ("corporate_deposits", "sum", "corporate deposits (daily average)", "对公存款日均"),
    ("active_digital_users", "count", "active digital users", "电子渠道活跃用户数"),
    ("digital_deposits", "sum", "deposits through digital channels (daily average)", "电子渠道存款日均"),
    ("time_deposits_opened", "count", "time deposits opened", "定期存款开立笔数"),
    ("retained_balance", "sum", "retained balance (daily average)", "挽留存款日均"),
    ("churn_avoided", "count", "customers retained", "挽留客户数"),
    ("bounties_won", "count", "bounties won", "悬赏完成数"),
)


@dataclass(frozen=True)
class KindSpec:
    """One campaign kind: everything the editor, the YAML loader and the engine need to know."""

    code: str
    label_en: str
    label_zh: str
    assigned: str  #: what is assigned, in words (customers, institutions, street grids …)
    assigned_zh: str
    tasks: tuple[dict[str, Any], ...]  #: default task templates, first = the first task of each assignment
    measures: tuple[str, ...]  #: measures the kind's targets and rules are usually written on
    rules: tuple[dict[str, Any], ...] = ()  #: default reward rules (YAML shape)
    population: dict[str, Any] = field(default_factory=dict)  #: suggested population
    target_measure: str | None = None  #: the measure the grid of per-staff targets offers first
    module: str | None = None  #: optional module with kind-specific behaviour (see :meth:`hooks`)
    #: ``"grid"``: each street grid of the population goes whole to one manager (扫街扫楼: a manager
    #: walks the shops of a grid); customers without a grid are assigned as usual.
    assign_by: str | None = None

    @property
    def label(self) -> str:
        """Both labels, as a director reads them: "deposit drive (旺季存款营销)"."""
        return f"{self.label_en} ({self.label_zh})"

    def hooks(self) -> Any:
        """The kind's own module, or None. It may define
        ``check_definition(data) -> iterable of (path, expected, value found)`` — extra checks of a
        campaign definition of this kind, reported with the other errors."""
        if not self.module:
            return None
        import importlib

        return importlib.import_module(self.module)

    def default_tasks(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.tasks))

    def default_rules(self) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.rules))

    def default_population(self) -> dict[str, Any]:
        return copy.deepcopy(self.population)


KINDS: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Add (or replace) a kind; its extra measures must already be known to the rule engine."""
    if not spec.tasks:
        raise ValueError(f"kind {spec.code!r} needs at least one task template")
    KINDS[spec.code] = spec
    return spec


def get_kind(code: str) -> KindSpec:
    """The kind ``code``, or ValueError naming the known kinds."""
    try:
        return KINDS[code]
    except KeyError:
        raise ValueError(f"unknown campaign kind {code!r}; known: {', '.join(KINDS)}") from None


def kind_choices(lang: str = "en") -> list[tuple[str, str]]:
    """(code, label) pairs for a select box, in registry order."""
    return [(k.code, k.label if lang == "en" else f"{k.label_zh} ({k.label_en})") for k in KINDS.values()]


def _register_measures() -> None:
    """Make the kinds' extra measures known to the rule engine (so rules on them parse)."""
    try:
        from appraisal.rules import MEASURES, register_measure
    except ImportError:  # pragma: no cover - the rule engine ships with the product
        return
    for name, unit, en, zh in EXTRA_MEASURES:
        if name not in MEASURES:
            register_measure(name, unit, en, zh)


def known_measures() -> set[str]:
    """Every measure a target or rule may name: the rule engine's plus the kinds'."""
    names = {m[0] for m in EXTRA_MEASURES}
    try:
        from appraisal.rules import MEASURES
    except ImportError:  # pragma: no cover
        MEASURES = {}  # noqa: N806
    names |= set(MEASURES)
    for k in KINDS.values():
        names |= set(k.measures)
    return names


_register_measures()

register_kind(
    KindSpec(
        code="street_canvassing",
        label_en="street canvassing",
        label_zh="扫街扫楼",
        assigned="street grids, communities, business districts and their shops",
        assigned_zh="网格、社区、商圈及商户",
        tasks=(
            {"kind": "visit", "title": "visit each shop of the grid", "within_days": 14},
            {
                "kind": "service_point",
                "title": "staff the convenience service point (便民服务点)",
                "every_days": 7,
            },
        ),
        measures=("visits", "contacts", "leads", "accounts_opened", "new_deposits"),
        rules=(
            {"id": "visits", "kind": "piece_rate", "measure": "visits", "rate": "2"},
            {"id": "acc", "kind": "piece_rate", "measure": "accounts_opened", "rate": "20"},
        ),
        population={"customers": {"type_in": ["business"]}},
        target_measure="visits",
        assign_by="grid",
    )
)

register_kind(
    KindSpec(
        code="payroll_accounts",
        label_en="payroll accounts",
        label_zh="企事业单位代发工资",
        assigned="institutions and enterprises (财政, 学校, 医院, SMEs)",
        assigned_zh="企事业单位",
        tasks=(
            {"kind": "contact_finance_office", "within_days": 7},
            {"kind": "negotiate", "after": "contact_finance_office", "within_days": 14},
            {"kind": "agreement", "after": "negotiate", "within_days": 30},
            {"kind": "accounts_on_site", "after": "agreement", "within_days": 14},
        ),
        measures=("agreements_signed", "payroll_accounts", "payroll_volume", "corporate_deposits"),
        rules=(
            {"id": "agr", "kind": "piece_rate", "measure": "agreements_signed", "rate": "500"},
            {"id": "pay-acc", "kind": "piece_rate", "measure": "payroll_accounts", "rate": "10"},
        ),
        population={"customers": {"type_in": ["institution", "business"]}},
        target_measure="payroll_accounts",
    )
)

register_kind(
    KindSpec(
        code="online_offline",
        label_en="online and offline",
        label_zh="线上线下组合营销",
        assigned="existing customers without digital channels",
        assigned_zh="未开通电子渠道的存量客户",
        tasks=(
            {"kind": "visit", "within_days": 14},
            {"kind": "activation", "within_days": 21},
        ),
        measures=("digital_activations", "active_digital_users", "digital_deposits"),
        rules=({"id": "act", "kind": "piece_rate", "measure": "digital_activations", "rate": "5"},),
        population={"customers": {"no_holding": "mobile_banking"}},
        target_measure="digital_activations",
    )
)

register_kind(
    KindSpec(
        code="deposit_drive",
        label_en="deposit drive",
        label_zh="旺季存款营销",
        assigned="segments: returning migrant workers, self-employed, employees with year-end bonuses",
        assigned_zh="返乡农民工、个体工商户、年终奖客户",
        tasks=(
            {"kind": "contact", "within_days": 7},
            {"kind": "follow_up", "every_days": 14},
        ),
        measures=("new_deposits", "time_deposits_opened", "accounts_opened"),
        rules=(
            {"id": "dep", "kind": "percentage", "measure": "new_deposits", "rate": "0.002", "cap": "5000"},
            {
                "id": "bonus",
                "kind": "attainment_bonus",
                "measure": "new_deposits",
                "thresholds": [{"at": "1.0", "amount": "500"}],
            },
        ),
        population={"customers": {"tags_any": ["returning_migrant_worker", "self_employed"]}},
        target_measure="new_deposits",
    )
)

register_kind(
    KindSpec(
        code="retention",
        label_en="retention",
        label_zh="客户维护",
        assigned="customers raised by alerts",
        assigned_zh="预警客户",
        tasks=({"kind": "retention", "title": "retention call or visit", "within_days": 3},),
        measures=("retained_balance", "churn_avoided"),
        rules=({"id": "kept", "kind": "piece_rate", "measure": "churn_avoided", "rate": "30"},),
        population={"customers": {}},
        target_measure="churn_avoided",
    )
)

register_kind(
    KindSpec(
        code="bounty",
        label_en="bounty",
        label_zh="悬赏营销",
        assigned="one hard target each (a hospital's payroll, one large depositor)",
        assigned_zh="攻坚目标（如医院代发、大额存款客户）",
        tasks=({"kind": "work_target", "title": "work the target and report", "within_days": 30},),
        measures=("bounties_won",),
        rules=({"id": "bounty", "kind": "bounty", "measure": "bounties_won"},),
        population={"customers": {"is_key": True}},
        target_measure="bounties_won",
    )
)
