"""The campaign definition (YAML of PRODUCT.md §8 and the web editor): every bad input refused with its path."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from campaigns import kinds
from campaigns.definition import (
    DefinitionErrors,
    MapLookup,
    StaffInfo,
    dump_yaml,
    load_yaml,
    parse_definition,
)

ROOT = Path(__file__).resolve().parents[2]

LOOKUP = MapLookup(
    staff_by_no={
        "S0001": StaffInfo("S0001", "U00", frozenset({"director"}), director_branches=None),
        "S1100": StaffInfo("S1100", "B01", frozenset({"director"}), director_branches=frozenset({"B01"})),
        "S1101": StaffInfo("S1101", "B01"),
        "S1102": StaffInfo("S1102", "B01"),
        "S2101": StaffInfo("S2101", "B02"),
        "S2102": StaffInfo("S2102", "B02"),
        "S3101": StaffInfo("S3101", "B03"),
        "S9999": StaffInfo("S9999", "B01", status="departed"),
    },
    branches={"U00", "B01", "B02", "B03"},
    codes={"DEP-2026-01": "campaign DEP-2026-01 (旧活动, closed, 2026-01-01–2026-03-31)"},
)


def good() -> dict:
    return load_yaml((ROOT / "examples" / "deposit_drive.yaml").read_text(encoding="utf-8"))


def errors_of(data: dict, lookup=LOOKUP) -> dict[str, str]:
    with pytest.raises(DefinitionErrors) as info:
        parse_definition(data, lookup)
    return {e.path: f"{e.expected} | {e.found}" for e in info.value.errors}


def test_the_example_file_parses_and_round_trips_to_identical_yaml():
    text = (ROOT / "examples" / "deposit_drive.yaml").read_text(encoding="utf-8")
    defn = parse_definition(load_yaml(text), LOOKUP)
    assert defn.kind == "deposit_drive" and defn.branches == ["B01", "B02"]
    assert defn.start == dt.date(2027, 1, 1) and defn.end == dt.date(2027, 3, 31)
    assert defn.rules[0]["rate"] == Decimal("0.002") and defn.budget == Decimal("200000")
    assert defn.targets[3].weights == {"S2101": Decimal(2), "S2102": Decimal(1)}
    out = dump_yaml(defn.to_dict())
    assert out == "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    again = parse_definition(load_yaml(out), LOOKUP)
    assert again == defn


def test_fractions_in_yaml_are_decimals_never_floats():
    data = load_yaml("rate: 0.002\ncap: 5000\nat: 1.2\n")
    assert data == {"rate": Decimal("0.002"), "cap": 5000, "at": Decimal("1.2")}
    assert isinstance(data["rate"], Decimal)


def test_a_bad_file_lists_every_error_with_its_path():
    data = good()
    data["period"] = {"start": "2027-03-31", "end": "2027-01-01"}  # inverted
    data["targets"][0]["measure"] = "happiness"  # unknown measure
    data["targets"][1]["staff"] = "S7777"  # unknown staff member
    data["rules"][2]["kind"] = "lottery"  # unknown rule kind
    data["rules"][0]["capp"] = 10  # typo
    errors = errors_of(data)
    assert set(errors) >= {
        "period.end",
        "targets[0].measure",
        "targets[1].staff",
        "rules[2].kind",
        "rules[0].capp",
    }
    assert "on or after the start 2027-03-31" in errors["period.end"]
    assert "'happiness'" in errors["targets[0].measure"]
    assert "no staff member has this number" in errors["targets[1].staff"]
    assert "'lottery'" in errors["rules[2].kind"] and "piece_rate" in errors["rules[2].kind"]


def test_the_error_message_names_path_expected_and_found():
    data = good()
    data["rules"][2]["kind"] = "lottery"
    with pytest.raises(DefinitionErrors) as info:
        parse_definition(data, LOOKUP)
    text = str(info.value)
    assert "rules[2].kind: expected one of" in text and "found 'lottery'" in text
    assert info.value.to_list()[0]["path"] == "rules[2].kind"


def test_a_second_campaign_with_the_same_code_is_refused_but_the_same_family_is_fine():
    data = good()
    data["code"] = "DEP-2026-01"
    errors = errors_of(data)
    assert "already used by campaign DEP-2026-01" in errors["code"]
    data["code"] = "DEP-2026-02"  # same family, overlapping period: fine
    assert parse_definition(data, LOOKUP).code == "DEP-2026-02"


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        (lambda d: d.pop("code"), "code", "nothing"),
        (lambda d: d.update(code="has space"), "code", "letters, digits"),
        (lambda d: d.update(name=""), "name", "1 to 200"),
        (lambda d: d.update(kind="lottery"), "kind", "deposit_drive"),
        (lambda d: d.update(owner="S1101"), "owner", "not a director"),
        (lambda d: d.update(owner="S4040"), "owner", "no staff member"),
        (lambda d: d.update(owner="S1100"), "owner", "not over B02"),
        (lambda d: d.update(branches=[]), "branches", "list of branch codes"),
        (lambda d: d.update(branches=["B01", "B09"]), "branches[1]", "existing branch"),
        (lambda d: d.update(branches=["B01", "B01"]), "branches[1]", "each branch once"),
        (
            lambda d: d.update(period={"start": "2027-02-30", "end": "2027-03-01"}),
            "period.start",
            "YYYY-MM-DD",
        ),
        (lambda d: d.update(period="Q1"), "period", "mapping"),
        (
            lambda d: d.update(population={"customers": {"colour": ["red"]}}),
            "population.customers.colour",
            "no filter",
        ),
        (
            lambda d: d.update(population={"customers": {"age_min": 60, "age_max": 30}}),
            "population.customers.age_max",
            "age_min",
        ),
        (lambda d: d.update(population={"segments": {}}), "population.segments", "no key"),
        (lambda d: d["targets"][0].update(staff="S3101"), "targets[0].staff", "campaign's branches"),
        (lambda d: d["targets"][2].update(branch="B03"), "targets[2].branch", "campaign's branches"),
        (lambda d: d["targets"][0].update(value=-5), "targets[0].value", "at least 0"),
        (lambda d: d["targets"][0].update(value="1.005"), "targets[0].value", "two decimals"),
        (lambda d: d["targets"][0].update(branch="B01"), "targets[0]", "exactly one of staff"),
        (lambda d: d["targets"][0].update(split="by_headcount"), "targets[0].split", "branch targets"),
        (lambda d: d["targets"][2].update(split="by_mood"), "targets[2].split", "by_headcount or by_weight"),
        (lambda d: d["targets"][3].update(weights={"S1101": 1}), "targets[3].weights.S1101", "of branch B02"),
        (lambda d: d["targets"][3].pop("weights"), "targets[3].weights", "staff_no → weight"),
        (lambda d: d["targets"][0].update(basis="month_end"), "targets[0].basis", "daily_average"),
        (lambda d: d["targets"].append(dict(d["targets"][0])), "targets[4]", "one target per measure"),
        (lambda d: d.update(tasks=[]), "tasks", "non-empty list"),
        (lambda d: d["tasks"].append({"kind": "call"}), "tasks[2]", "within_days"),
        (
            lambda d: d["tasks"].append({"kind": "sign", "after": "dance", "within_days": 3}),
            "tasks[2].after",
            "earlier task",
        ),
        (lambda d: d["tasks"][0].update(within_days=-1), "tasks[0].within_days", "at least 0"),
        (lambda d: d["rules"][1].update(measure="happiness"), "rules[1].measure", "known measures"),
        (lambda d: d["rules"][0].update(rate="lots"), "rules[0].rate", "decimal number"),
        (lambda d: d["rules"][0].update(basis="sometimes"), "rules[0].basis", "point_in_time"),
        (lambda d: d["rules"].append(dict(d["rules"][0])), "rules[5].id", "not used by another rule"),
        (lambda d: d.update(rules="some"), "rules", "or: none"),
        (lambda d: d.update(budget="1.001"), "budget", "two decimals"),
        (lambda d: d.update(colour="green"), "colour", "no key 'colour'"),
    ],
)
def test_each_bad_input_is_refused_with_its_path(change, path, words):
    data = copy.deepcopy(good())
    change(data)
    errors = errors_of(data)
    assert path in errors, errors
    assert words in errors[path]


def test_a_document_that_is_not_a_mapping_and_broken_yaml():
    assert "(document)" in errors_of(["not", "a", "campaign"])
    with pytest.raises(DefinitionErrors) as info:
        load_yaml("code: [unclosed\nname: x\n")
    assert info.value.errors[0].path.startswith("line ")


def test_missing_tasks_take_the_kinds_defaults_and_rules_none_is_explicit():
    data = good()
    del data["tasks"]
    data["rules"] = "none"
    defn = parse_definition(data, LOOKUP)
    assert defn.tasks == kinds.get_kind("deposit_drive").default_tasks()
    assert defn.rules == [] and defn.rules_none
    assert defn.to_dict()["rules"] == "none"


def test_point_in_time_is_a_valid_structure_the_launch_check_refuses_later():
    data = good()
    data["targets"][0]["basis"] = "point_in_time"
    data["rules"][0]["basis"] = "point_in_time"
    defn = parse_definition(data, LOOKUP)
    assert defn.targets[0].basis == "point_in_time"
    assert defn.rules[0]["basis"] == "point_in_time"
    assert "basis" not in defn.rules[1]


def test_without_a_lookup_references_are_not_checked():
    data = good()
    data["owner"] = "S4040"
    assert parse_definition(data).owner == "S4040"


def test_every_kind_is_configuration_with_valid_defaults():
    from appraisal.rules import parse_rules

    assert set(kinds.KINDS) == {
        "street_canvassing",
        "payroll_accounts",
        "online_offline",
        "deposit_drive",
        "retention",
        "bounty",
    }
    for spec in kinds.KINDS.values():
        assert spec.label_en and spec.label_zh and spec.assigned and spec.tasks and spec.measures
        parse_rules(spec.default_rules())
        data = good() | {"kind": spec.code, "tasks": spec.default_tasks(), "rules": spec.default_rules()}
        data["population"] = spec.default_population()
        assert parse_definition(data, LOOKUP).kind == spec.code
        assert set(spec.measures) <= kinds.known_measures()
    dep = kinds.get_kind("deposit_drive")
    assert dep.default_tasks() == [
        {"kind": "contact", "within_days": 7},
        {"kind": "follow_up", "every_days": 14},
    ]
    rules = {r["id"]: r for r in dep.default_rules()}
    assert rules["dep"]["rate"] == "0.002" and rules["dep"]["cap"] == "5000"
    assert rules["bonus"]["thresholds"] == [{"at": "1.0", "amount": "500"}]
    pay = [t["kind"] for t in kinds.get_kind("payroll_accounts").default_tasks()]
    assert pay == ["contact_finance_office", "negotiate", "agreement", "accounts_on_site"]
    assert kinds.get_kind("retention").default_tasks()[0]["within_days"] == 3
    with pytest.raises(ValueError, match="unknown campaign kind"):
        kinds.get_kind("lottery")


def test_a_new_kind_is_one_entry():
    spec = kinds.KindSpec(
        code="loan_fair",
        label_en="loan fair",
        label_zh="贷款推介会",
        assigned="villages",
        assigned_zh="行政村",
        tasks=({"kind": "invite", "within_days": 5},),
        measures=("accounts_opened",),
    )
    kinds.register_kind(spec)
    try:
        data = good() | {"kind": "loan_fair"}
        del data["tasks"]
        assert parse_definition(data, LOOKUP).tasks == [{"kind": "invite", "within_days": 5}]
    finally:
        del kinds.KINDS["loan_fair"]


def test_a_kinds_own_module_adds_its_checks(monkeypatch):
    import sys
    import types

    module = types.ModuleType("campaigns_kind_grid_test")
    module.check_definition = lambda data: (
        []
        if data.get("population", {}).get("customers", {}).get("grid_in")
        else [("population.customers.grid_in", "the street grids to canvass", None)]
    )
    monkeypatch.setitem(sys.modules, "campaigns_kind_grid_test", module)
    spec = kinds.KindSpec(
        code="grid_walk",
        label_en="grid walk",
        label_zh="网格走访",
        assigned="street grids",
        assigned_zh="网格",
        tasks=({"kind": "visit", "within_days": 7},),
        measures=("visits",),
        module="campaigns_kind_grid_test",
    )
    monkeypatch.setitem(kinds.KINDS, "grid_walk", spec)
    data = good() | {"kind": "grid_walk"}
    assert errors_of(data)["population.customers.grid_in"] == "the street grids to canvass | an empty value"
    data["population"] = {"customers": {"grid_in": ["G03"]}}
    assert parse_definition(data, LOOKUP).kind == "grid_walk"
