"""Explainable assignment at launch (PRODUCT.md §5, §11.3): relationship manager first, key
customers to seniors, the rest balanced by load within capacity, seeded ties, pool and alert."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, func, select

from campaigns import assignment
from campaigns.assignment import Candidate, draw_order, plan_bands
from campaigns.assignment_models import DistributionBand
from campaigns.models import Assignment
from tasks.models import Task
from tests.factories import make_campaign, make_customer, make_staff


def _rows(session, campaign):
    return {
        a.customer_id: a
        for a in session.scalars(select(Assignment).where(Assignment.campaign_id == campaign.id))
    }


def test_relationship_manager_first_only_when_active_and_in_scope(session, union):
    mine = make_customer(session, union.b1, union.m1)
    away = make_staff(session, union.b1, status="on_leave")
    of_away = make_customer(session, union.b1, away)
    outsider = make_customer(session, union.b1, union.m3)  # RM works in B02, not in the campaign
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()

    counts = assignment.generate(session, campaign)
    session.commit()
    rows = _rows(session, campaign)
    assert counts["assignments"] == 3
    assert (rows[mine.id].staff_id, rows[mine.id].reason) == (union.m1.id, "relationship manager")
    for c in (of_away, outsider):
        assert rows[c.id].staff_id in (union.m1.id, union.m2.id)
        assert rows[c.id].reason.startswith("least loaded in branch (")
    assert away.id not in {a.staff_id for a in rows.values()}


def test_key_customers_go_to_senior_managers(session, union):
    union.m2.senior = True
    key = [make_customer(session, union.b1, is_key=True) for _ in range(3)]
    plain = make_customer(session, union.b1)
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()

    assignment.generate(session, campaign)
    rows = _rows(session, campaign)
    for c in key:
        assert rows[c.id].staff_id == union.m2.id
        assert rows[c.id].reason == "key customer → senior manager"
    # m2 now carries 3, so the plain customer goes to the less loaded m1
    assert rows[plain.id].staff_id == union.m1.id
    assert rows[plain.id].reason == "least loaded in branch (0 open)"


def test_balanced_by_load_within_capacity_rest_stays_in_pool_and_alerts(session, union):
    union.m1.capacity = 2
    union.m2.capacity = 2
    extra = make_staff(session, union.b1, capacity=3)
    make_customer(session, union.b1, union.m1)  # m1 starts with one (relationship manager)
    customers = [make_customer(session, union.b1) for _ in range(10)]
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()

    assignment.generate(session, campaign)
    session.commit()
    rows = _rows(session, campaign)
    owners = Counter(rows[c.id].staff_id for c in customers)
    # m1: 1 more (capacity 2), m2: 2, extra: 3 → 6 given, 4 left in the pool
    assert owners == {union.m1.id: 1, union.m2.id: 2, extra.id: 3, None: 4}
    pool = [rows[c.id] for c in customers if rows[c.id].staff_id is None]
    assert {a.state for a in pool} == {"pool"}
    assert {a.reason for a in pool} == {"branch pool: every active manager is at capacity"}
    # the reasons say the load at the moment of the choice
    extra_reasons = sorted(rows[c.id].reason for c in customers if rows[c.id].staff_id == extra.id)
    assert extra_reasons == [f"least loaded in branch ({n} open)" for n in (0, 1, 2)]
    assert [rows[c.id].reason for c in customers if rows[c.id].staff_id == union.m1.id] == [
        "least loaded in branch (1 open)"
    ]
    alert = assignment.unassigned_alert(session, campaign)
    assert alert is not None and alert.owner_id == union.director_b1.id
    assert "4 assignments" in alert.message and "B01: 4" in alert.message
    from tasks.models import Notification

    bell = session.scalars(select(Notification).where(Notification.staff_id == union.director_b1.id)).all()
    assert [n.kind for n in bell] == ["assignment_alert"] and "B01: 4" in bell[0].text
    # the scratch plan is gone
    assert session.scalar(select(func.count()).select_from(DistributionBand)) == 0


def test_branch_without_active_manager_keeps_everything_in_pool(session, union):
    union.m3.status = "departed"
    c = make_customer(session, union.b2)
    campaign = make_campaign(session, union.director_b2, [union.b2])
    session.commit()
    assignment.generate(session, campaign)
    a = _rows(session, campaign)[c.id]
    assert (a.staff_id, a.state, a.reason) == (None, "pool", "branch pool: no active manager in the branch")


def test_inactive_on_leave_departed_never_assigned(session, union):
    gone = [make_staff(session, union.b1, status=s) for s in ("inactive", "on_leave", "departed")]
    customers = [make_customer(session, union.b1, gone[i % 3]) for i in range(12)]
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    assignment.generate(session, campaign)
    owners = {a.staff_id for a in _rows(session, campaign).values()}
    assert owners <= {union.m1.id, union.m2.id}
    assert len(customers) == 12
    # 12 over two equally loaded managers: 6 each
    assert Counter(a.staff_id for a in _rows(session, campaign).values()) == {union.m1.id: 6, union.m2.id: 6}


def test_seeded_draw_is_deterministic_and_not_by_seniority(session, union):
    customers = [make_customer(session, union.b1) for _ in range(9)]
    campaign = make_campaign(session, union.director_b1, [union.b1], code="DEP-SEED-01")
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    first = {cid: (a.staff_id, a.reason) for cid, a in _rows(session, campaign).items()}
    session.execute(delete(Task).where(Task.campaign_id == campaign.id))
    session.execute(delete(Assignment).where(Assignment.campaign_id == campaign.id))
    session.commit()
    assignment.generate(session, campaign)
    session.commit()
    again = {cid: (a.staff_id, a.reason) for cid, a in _rows(session, campaign).items()}
    assert first == again and len(first) == len(customers)
    # the tie-break draw depends on the code only
    assert draw_order([5, 1, 9, 3], assignment.seed_of("X")) == draw_order(
        [9, 3, 1, 5], assignment.seed_of("X")
    )
    orders = {tuple(draw_order(range(10), assignment.seed_of(f"C{i}"))) for i in range(20)}
    assert len(orders) > 1


def test_plan_bands_water_fills_least_loaded_first():
    cands = [Candidate(1, 0, 5), Candidate(2, 3, 5), Candidate(3, 1, 2)]
    bands, given = plan_bands(cands, 7, [3, 1, 2])
    # levels: 0→1 only #1; 1→2 #3,#1; 2→3 #1; from 3 #1,#2 in draw order (#1 first)
    assert given == {1: 5, 2: 1, 3: 1}
    assert [(b.lo, b.hi, b.level, b.members) for b in bands] == [
        (0, 1, 0, (1,)),
        (1, 3, 1, (3, 1)),
        (3, 4, 2, (1,)),
        (4, 7, 3, (1, 2)),
    ]
    assert plan_bands([Candidate(1, 5, 5)], 3, [1]) == ([], {1: 0})


def test_retried_generation_creates_nothing_twice(session, union):
    for i in range(5):
        make_customer(session, union.b1, union.m1 if i % 2 else None)
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    first = assignment.generate(session, campaign)
    session.commit()
    again = assignment.generate(session, campaign)
    session.commit()
    assert first["assignments"] == 5 and first["tasks"] == 5
    assert again["assignments"] == 0 and again["tasks"] == 0
    assert session.scalar(select(func.count()).select_from(Assignment)) == 5
    assert session.scalar(select(func.count()).select_from(Task)) == 5
    reasons = {a.reason for a in _rows(session, campaign).values()}
    assert reasons <= {
        "relationship manager",
        "least loaded in branch (0 open)",
        "least loaded in branch (1 open)",
        "least loaded in branch (2 open)",
        "least loaded in branch (3 open)",
    }


def test_launch_job_runs_every_phase(client, session, union):
    from campaigns import services

    for _ in range(4):
        make_customer(session, union.b1)
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    services.launch(session, campaign, union.director_b1.id)
    session.commit()  # the eager job runs after commit
    session.expire_all()
    assert (
        session.scalar(
            select(func.count()).select_from(Assignment).where(Assignment.campaign_id == campaign.id)
        )
        == 4
    )
    assert session.scalar(select(func.count()).select_from(Task).where(Task.campaign_id == campaign.id)) == 4


# -- street canvassing: whole grids ------------------------------------------------------------


def test_plan_grids_gives_whole_grids_largest_first_within_capacity():
    from campaigns.assignment import plan_grids

    cands = [Candidate(1, 0, 10), Candidate(2, 4, 10), Candidate(3, 0, 3)]
    plan = plan_grids([("G1", 6), ("G2", 5), ("G3", 2), ("G4", 20)], cands, order=[3, 1, 2])
    # G1 (6) → 1 (least loaded with room: 3 has only 3); G2 (5) → 2 (load 4, 1 now has 6);
    # G3 (2) → 3 (load 0); G4 (20) fits nobody and is left to the load balancing
    assert plan == {"G1": (1, 0), "G2": (2, 4), "G3": (3, 0)}


def test_plan_grids_breaks_ties_by_the_draw_not_by_id():
    from campaigns.assignment import plan_grids

    cands = [Candidate(1, 0, 10), Candidate(2, 0, 10)]
    assert plan_grids([("G1", 3)], cands, order=[2, 1]) == {"G1": (2, 0)}
    assert plan_grids([("G1", 3)], cands, order=[1, 2]) == {"G1": (1, 0)}


def test_canvassing_gives_each_grid_to_one_manager_and_splits_only_what_fits_nobody(session, union):
    union.m1.capacity = 5
    union.m2.capacity = 5
    shops = {
        g: [make_customer(session, union.b1, type="business", grid=g) for _ in range(n)]
        for g, n in (("G1", 4), ("G2", 3), ("G3", 6))
    }
    loose = make_customer(session, union.b1, type="business")  # no grid
    campaign = make_campaign(session, union.director_b1, [union.b1], kind="street_canvassing")
    session.commit()

    counts = assignment.generate(session, campaign)
    session.commit()
    rows = _rows(session, campaign)
    assert counts["assignments"] == 14
    owner_of = {g: {rows[c.id].staff_id for c in cs} for g, cs in shops.items()}
    # G1 and G2 each go whole to one manager, different ones (4 and 3 of capacity 5)
    assert len(owner_of["G1"]) == 1 and len(owner_of["G2"]) == 1 and owner_of["G1"] != owner_of["G2"]
    assert all(rows[c.id].reason == "whole grid (G1, 0 open)" for c in shops["G1"])
    # G3 (6) fits nobody: split by load within capacity (1 + 2 places left), the rest in the pool
    g3 = Counter(rows[c.id].staff_id for c in shops["G3"] + [loose])
    assert g3[None] == 4 and sum(g3.values()) == 7
    assert all(
        rows[c.id].reason.startswith(("least loaded in branch", "branch pool")) for c in shops["G3"] + [loose]
    )
    # a retry creates nothing twice
    assert assignment.generate(session, campaign)["assignments"] == 0


def test_other_kinds_ignore_grids(session, union):
    cs = [make_customer(session, union.b1, grid="G1") for _ in range(4)]
    campaign = make_campaign(session, union.director_b1, [union.b1])
    session.commit()
    assignment.generate(session, campaign)
    rows = _rows(session, campaign)
    assert Counter(rows[c.id].staff_id for c in cs) == {union.m1.id: 2, union.m2.id: 2}
