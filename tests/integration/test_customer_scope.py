"""Who sees which customer (PRODUCT.md §1): managers, branch directors, union roles; 404 on guesses."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from campaigns.models import Assignment
from customers import queries
from customers.models import Customer
from org.scope import NotFound, Scope
from tests.factories import make_campaign, make_customer, make_staff


@pytest.fixture
def world(session, union):
    c = {
        "m1_own": make_customer(session, union.b1, union.m1),
        "m2_own": make_customer(session, union.b1, union.m2),
        "b1_pool": make_customer(session, union.b1, None),
        "m3_own": make_customer(session, union.b2, union.m3),
        "b2_pool": make_customer(session, union.b2, None),
        "assigned_to_m1": make_customer(session, union.b2, union.m3),
        "campaign_pool_b1": make_customer(session, union.b1, union.m2),
        "closed_for_m1": make_customer(session, union.b1, union.m2),
    }
    campaign = make_campaign(session, union.director, [union.b1, union.b2])
    session.add_all(
        [
            Assignment(
                campaign_id=campaign.id,
                customer_id=c["assigned_to_m1"].id,
                branch_id=union.b1.id,
                staff_id=union.m1.id,
                state="assigned",
            ),
            Assignment(
                campaign_id=campaign.id,
                customer_id=c["campaign_pool_b1"].id,
                branch_id=union.b1.id,
                staff_id=None,
                state="pool",
            ),
            Assignment(
                campaign_id=campaign.id,
                customer_id=c["closed_for_m1"].id,
                branch_id=union.b1.id,
                staff_id=union.m1.id,
                state="closed",
            ),
        ]
    )
    session.commit()
    return c


def visible(session, staff, world):
    scope = Scope.of(session, staff)
    ids = set(session.scalars(queries.scoped_customers(scope).with_only_columns(Customer.id)))
    return {k for k, c in world.items() if c.id in ids}


def test_manager_sees_own_assigned_and_branch_pool(session, union, world):
    assert visible(session, union.m1, world) == {"m1_own", "b1_pool", "assigned_to_m1", "campaign_pool_b1"}
    assert visible(session, union.m3, world) == {"m3_own", "b2_pool", "assigned_to_m1"}


def test_branch_director_sees_only_their_branch(session, union, world):
    assert visible(session, union.director_b1, world) == {
        "m1_own",
        "m2_own",
        "b1_pool",
        "campaign_pool_b1",
        "closed_for_m1",
    }
    assert visible(session, union.director_b2, world) == {"m3_own", "b2_pool", "assigned_to_m1"}


def test_union_roles_see_everyone(session, union, world):
    for staff in (union.admin, union.director, union.checker):
        assert visible(session, staff, world) == set(world)


def test_guessed_id_is_not_found(session, union, world):
    m1 = Scope.of(session, union.m1)
    assert queries.get_customer(session, m1, world["m1_own"].id).id == world["m1_own"].id
    for key in ("m2_own", "m3_own", "b2_pool", "closed_for_m1"):
        with pytest.raises(NotFound):
            queries.get_customer(session, m1, world[key].id)
    with pytest.raises(NotFound):
        queries.get_customer(session, m1, 10**9)
    d2 = Scope.of(session, union.director_b2)
    with pytest.raises(NotFound):
        queries.get_customer(session, d2, world["m1_own"].id)


def test_staff_without_roles_sees_nothing(session, union, world):
    nobody = make_staff(session, union.b1, roles=())
    session.commit()
    assert visible(session, nobody, world) == set()


def test_who_may_reveal(session, union, world):
    own = world["m1_own"]
    assert queries.may_reveal(Scope.of(session, union.m1), own)
    assert not queries.may_reveal(Scope.of(session, union.m2), own)
    assert queries.may_reveal(Scope.of(session, union.director_b1), own)
    assert not queries.may_reveal(Scope.of(session, union.director_b2), own)
    assert queries.may_reveal(Scope.of(session, union.admin), own)
    assert not queries.may_reveal(Scope.of(session, union.checker), own)


def test_filters_use_the_scope(session, union, world):
    flt = queries.CustomerFilter.from_args({"branch": str(union.b2.id)})
    page = queries.customer_page(session, Scope.of(session, union.m1), flt)
    assert {c.id for c in page.rows} == {world["assigned_to_m1"].id}
    assert session.scalar(select(Customer).where(Customer.id == world["b2_pool"].id)) is not None
