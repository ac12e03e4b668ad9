"""Campaign dashboard: funnel, rates, attainment from the ledger, leaderboard, trend, XLSX."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
from sqlalchemy import select

from appraisal.models import LedgerEvent
from campaigns import assignment
from campaigns.models import Assignment, Target
from config import clock
from tests.factories import login, make_campaign, make_customer
from workflow.engine import fire


def _campaign(session, union):
    for i in range(6):
        make_customer(session, union.b1, union.m1 if i < 4 else union.m2)
    make_customer(session, union.b2, union.m3)
    targets = [
        Target(measure="accounts_opened", branch_id=union.b1.id, value=Decimal("10")),
        Target(measure="accounts_opened", staff_id=union.m1.id, value=Decimal("4")),
    ]
    campaign = make_campaign(session, union.director, [union.b1, union.b2], targets=targets, state="active")
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    rows = list(
        session.scalars(
            select(Assignment)
            .where(Assignment.campaign_id == campaign.id, Assignment.staff_id == union.m1.id)
            .order_by(Assignment.id)
        )
    )
    fire(session, rows[0], "contact", actor_id=union.m1.id)
    fire(session, rows[0], "interest", actor_id=union.m1.id)
    fire(session, rows[0], "convert", actor_id=union.m1.id)
    fire(session, rows[1], "contact", actor_id=union.m1.id)
    fire(session, rows[1], "decline", actor_id=union.m1.id)
    fire(session, rows[2], "contact", actor_id=union.m1.id)
    today = clock.today()
    session.add(
        LedgerEvent(
            event_id="E1",
            occurred_on=today,
            month=today.strftime("%Y-%m"),
            staff_id=union.m1.id,
            customer_id=rows[0].customer_id,
            campaign_id=campaign.id,
            measure="accounts_opened",
            quantity=2,
        )
    )
    session.commit()
    return campaign


def test_dashboard_figures_and_charts(client, session, union):
    campaign = _campaign(session, union)
    login(client, union.director)
    r = client.get(f"/campaigns/{campaign.id}/dashboard")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert html.count("data-chart=") >= 2
    # 7 assigned (6 in B01, 1 in B02); 3 contacted; 1 interested; 1 converted
    assert 'data-testid="contact-rate">42.9 %' in html
    # responded: converted + declined = 2 of 3 contacted
    assert 'data-testid="response-rate">66.7 %' in html
    assert "Attainment counts verified results from the performance ledger" in html
    # the detail page links the dashboard now
    assert f"/campaigns/{campaign.id}/dashboard".encode() in client.get(f"/campaigns/{campaign.id}").data


def test_branch_director_sees_only_their_branch(client, session, union):
    campaign = make_campaign(session, union.director, [union.b1, union.b2])
    make_customer(session, union.b1, union.m1)
    make_customer(session, union.b2, union.m3)
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    login(client, union.director_b2)
    # the campaign reaches B02, so it is visible — with B02's figures only
    html = client.get(f"/campaigns/{campaign.id}/dashboard").get_data(as_text=True)
    assert "B02" in html and "B01" not in html
    login(client, union.m1)
    assert client.get(f"/campaigns/{campaign.id}/dashboard").status_code == 403


def test_xlsx_downloads(client, session, union):
    campaign = _campaign(session, union)
    login(client, union.director)
    for name in ("funnel", "branches", "staff", "leaderboard", "trend", "reasons"):
        r = client.get(f"/campaigns/{campaign.id}/dashboard/{name}.xlsx")
        assert r.status_code == 200, name
        book = openpyxl.load_workbook(io.BytesIO(r.data))
        rows = list(book.active.iter_rows(values_only=True))
        assert rows, name
        if name == "staff":
            header, *data = rows
            m1 = next(row for row in data if row[0] == "M0101")
            # achieved 2 of target 4 from the ledger
            assert m1[header.index("accounts_opened achieved")] == 2
            assert m1[header.index("accounts_opened attainment")] == "50.0 %"
        if name == "branches":
            header, *data = rows
            b1 = next(row for row in data if row[0] == "B01")
            assert b1[header.index("accounts_opened target")] == 10
        if name == "trend":
            header, *data = rows
            assert sum(row[1] for row in data) == 3  # three contacts today
        if name == "leaderboard":
            assert rows[1][1] == "M0101"
        if name == "reasons":
            assert rows[1:] == [("relationship manager", 7, 5)]  # 2 of 7 are finished
    assert client.get(f"/campaigns/{campaign.id}/dashboard/secret.xlsx").status_code == 404


def test_xlsx_cells_are_never_formulas():
    from web.campaign_dashboard import _safe

    assert _safe("=1+1") == "'=1+1"
    assert _safe("@SUM(A1)") == "'@SUM(A1)"
    assert _safe("B01") == "B01"
    assert _safe(3) == 3


def test_reason_kinds_group_the_details_away():
    from campaigns.dashboard import reason_kind

    assert reason_kind("least loaded in branch (3 open)") == "least loaded in branch"
    assert reason_kind("handed over: 调岗") == "handed over"
    assert reason_kind("key customer → senior manager") == "key customer → senior manager"
    assert reason_kind(None) == "—"


def test_grid_table_for_street_canvassing(client, session, union):
    from tasks.models import Task

    shops = [make_customer(session, union.b1, union.m1, grid=grid) for grid in ("G03", "G03", "G04")]
    campaign = make_campaign(session, union.director_b1, [union.b1], kind="street_canvassing")
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    first = session.scalars(
        select(Assignment).where(Assignment.campaign_id == campaign.id, Assignment.customer_id == shops[0].id)
    ).one()
    fire(session, first, "contact", actor_id=union.m1.id)
    task = session.scalars(select(Task).where(Task.assignment_id == first.id)).one()
    task.kind, task.state = "visit", "done"
    session.commit()
    login(client, union.director_b1)
    html = client.get(f"/campaigns/{campaign.id}/dashboard").get_data(as_text=True)
    assert 'data-testid="table-grids"' in html
    r = client.get(f"/campaigns/{campaign.id}/dashboard/grids.xlsx")
    rows = list(openpyxl.load_workbook(io.BytesIO(r.data)).active.iter_rows(values_only=True))
    assert rows[1:] == [("G03", 2, 1, 1, "50.0 %", 0, 0), ("G04", 1, 0, 0, "0.0 %", 0, 0)]


def test_trend_days_are_the_unions_days(session, union, monkeypatch):
    """History is stored in the union's wall-clock time: a contact at 23:30 counts on its own day,
    not the next one (a UTC shift would move it)."""
    import datetime as dt

    from campaigns import dashboard
    from org.scope import Scope

    late = dt.datetime(2026, 11, 27, 23, 30)
    monkeypatch.setattr(clock, "now", lambda: late)
    campaign = _campaign(session, union)
    dash = dashboard.build(session, Scope.of(session, union.director), campaign)
    assert [d["day"] for d in dash.trend] == ["2026-11-27"]
    assert dash.trend[0]["converted"] == 1
