"""`campaignflow campaigns load/export/launch/list`: exit codes, errors with paths, second launch refused."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from campaigns.models import Assignment, Campaign
from config import clock
from tasks.models import Task
from tests.factories import make_customer


def yaml_text(code: str = "DEP-T-01", start: dt.date | None = None, **extra: str) -> str:
    start = start or clock.today()
    end = start + dt.timedelta(days=90)
    text = f"""code: {code}
name: 开门红存款营销
kind: deposit_drive
owner: D0001
branches: [B01, B02]
period: {{start: {start.isoformat()}, end: {end.isoformat()}}}
population:
  customers:
    tags_any: [self_employed]
targets:
- {{measure: new_deposits, staff: M0101, value: 2000000}}
- {{measure: accounts_opened, branch: B01, value: 300, split: by_headcount}}
tasks:
- {{kind: contact, within_days: 7}}
- {{kind: follow_up, every_days: 14}}
rules:
- {{id: dep, kind: percentage, measure: new_deposits, rate: 0.002, cap: 5000}}
- id: bonus
  kind: attainment_bonus
  measure: new_deposits
  thresholds:
  - {{at: 1, amount: 500}}
budget: 200000
"""
    for old, new in extra.items():
        text = text.replace(old, new)
    return text


def write(tmp_path, text: str):
    path = tmp_path / "campaign.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_load_export_round_trip_and_list(runner, session, union, tmp_path):
    text = yaml_text()
    r = runner.invoke(args=["campaigns", "load", write(tmp_path, text)])
    assert r.exit_code == 0, r.output
    assert "loaded DEP-T-01 (draft): 2 targets, 2 task templates, 2 rules" in r.output
    c = session.scalar(select(Campaign).where(Campaign.code == "DEP-T-01"))
    assert c.state == "draft" and [b.code for b in c.branches] == ["B01", "B02"]
    assert c.rules[0]["rate"] == "0.002"

    r = runner.invoke(args=["campaigns", "export", "DEP-T-01"])
    assert r.exit_code == 0
    assert r.output == text  # identical YAML

    out = tmp_path / "out.yaml"
    r = runner.invoke(args=["campaigns", "export", "DEP-T-01", "--out", str(out)])
    assert r.exit_code == 0 and out.read_text(encoding="utf-8") == text

    r = runner.invoke(args=["campaigns", "list"])
    assert r.exit_code == 0 and "DEP-T-01" in r.output and "draft" in r.output

    r = runner.invoke(args=["campaigns", "export", "NOPE"])
    assert r.exit_code == 2 and "no campaign with code 'NOPE'" in r.output


def test_a_bad_file_is_refused_whole_with_every_error(runner, session, union, tmp_path):
    bad = yaml_text(
        **{
            "staff: M0101": "staff: S7777",
            "measure: accounts_opened": "measure: happiness",
            "kind: attainment_bonus": "kind: lottery",
        }
    )
    start = clock.today()
    bad = bad.replace(f"end: {(start + dt.timedelta(days=90)).isoformat()}", "end: 2000-01-01")
    r = runner.invoke(args=["campaigns", "load", write(tmp_path, bad)])
    assert r.exit_code == 2
    assert "nothing was stored" in r.output
    for path in ("period.end", "targets[0].staff", "targets[1].measure", "rules[1].kind"):
        assert f"  {path}: expected" in r.output, r.output
    assert session.scalar(select(func.count()).select_from(Campaign)) == 0

    runner.invoke(args=["campaigns", "load", write(tmp_path, yaml_text())])
    r = runner.invoke(args=["campaigns", "load", write(tmp_path, yaml_text())])
    assert r.exit_code == 2 and "code: expected a code no other campaign uses" in r.output
    r = runner.invoke(
        args=["campaigns", "load", "--replace", write(tmp_path, yaml_text(**{"value: 300": "value: 320"}))]
    )
    assert r.exit_code == 0 and "updated DEP-T-01" in r.output
    session.commit()
    assert sorted(int(t.value) for t in session.scalar(select(Campaign)).targets) == [320, 2000000]


def test_launch_generates_assignments_and_tasks_and_a_second_launch_is_refused(
    runner, session, union, tmp_path
):
    for _ in range(3):
        make_customer(session, union.b1, union.m1, tags=["self_employed"])
    make_customer(session, union.b2, union.m3, tags=["self_employed"])
    make_customer(session, union.b1, union.m2, tags=["farmer"])  # not in the population
    session.commit()
    assert runner.invoke(args=["campaigns", "load", write(tmp_path, yaml_text())]).exit_code == 0

    r = runner.invoke(args=["campaigns", "launch", "DEP-T-01"])
    assert r.exit_code == 0, r.output
    assert "DEP-T-01: active" in r.output and "done: assignments 4, tasks 4" in r.output
    session.commit()
    c = session.scalar(select(Campaign).where(Campaign.code == "DEP-T-01"))
    assert c.state == "active"
    assert (
        session.scalar(select(func.count()).select_from(Assignment).where(Assignment.campaign_id == c.id))
        == 4
    )
    assert session.scalar(select(func.count()).select_from(Task).where(Task.campaign_id == c.id)) == 4

    r = runner.invoke(args=["campaigns", "launch", "DEP-T-01"])
    assert r.exit_code == 1
    assert "refused (409)" in r.output and "it is active" in r.output and "pause" in r.output
    assert session.scalar(select(func.count()).select_from(Task).where(Task.campaign_id == c.id)) == 4

    r = runner.invoke(args=["campaigns", "load", "--replace", write(tmp_path, yaml_text())])
    assert r.exit_code == 1 and "only a draft can be edited" in r.output


def test_launch_refused_by_the_launch_check_and_by_an_empty_population(runner, session, union, tmp_path):
    make_customer(session, union.b1, union.m1, tags=["self_employed"])
    session.commit()
    pit = yaml_text(**{"value: 2000000}": "value: 2000000, basis: point_in_time}"})
    r = runner.invoke(args=["campaigns", "load", write(tmp_path, pit)])
    assert r.exit_code == 0 and "BLOCKS LAUNCH" in r.output and "point-in-time" in r.output
    r = runner.invoke(args=["campaigns", "launch", "DEP-T-01"])
    assert r.exit_code == 1 and "point-in-time (时点)" in r.output and "daily averages (日均)" in r.output
    session.commit()
    assert session.scalar(select(Campaign.state)) == "draft"

    empty = yaml_text(code="DEP-T-02", **{"self_employed": "nobody_has_this_tag"})
    assert runner.invoke(args=["campaigns", "load", write(tmp_path, empty)]).exit_code == 0
    r = runner.invoke(args=["campaigns", "launch", "DEP-T-02"])
    assert r.exit_code == 1 and "population is empty" in r.output


def test_launch_by_a_director_of_another_branch_is_refused(runner, session, union, tmp_path):
    make_customer(session, union.b1, union.m1, tags=["self_employed"])
    session.commit()
    runner.invoke(args=["campaigns", "load", write(tmp_path, yaml_text())])
    r = runner.invoke(args=["campaigns", "launch", "DEP-T-01", "--actor", "D0101"])
    assert r.exit_code == 1 and "beyond your branches" in r.output
    r = runner.invoke(args=["campaigns", "launch", "DEP-T-01", "--actor", "X9"])
    assert r.exit_code == 2


def test_all_branches_round_trip_and_a_branch_director_cannot_own_them(runner, session, union, tmp_path):
    text = yaml_text(
        **{
            "branches: [B01, B02]": "branches: all",
            "- {measure: accounts_opened, branch: B01, value: 300, split: by_headcount}\n": "",
        }
    )
    r = runner.invoke(args=["campaigns", "load", write(tmp_path, text)])
    assert r.exit_code == 0, r.output
    c = session.scalar(select(Campaign))
    assert c.all_branches and c.branches == []
    assert runner.invoke(args=["campaigns", "export", "DEP-T-01"]).output == text
    r = runner.invoke(
        args=[
            "campaigns",
            "load",
            write(tmp_path, text.replace("owner: D0001", "owner: D0101").replace("DEP-T-01", "DEP-T-02")),
        ]
    )
    assert r.exit_code == 2 and "owner: expected a director whose scope covers every branch" in r.output
