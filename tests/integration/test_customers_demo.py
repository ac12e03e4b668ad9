"""The demo customers: deterministic, valid personal data, segments, snapshots, alerts."""

from __future__ import annotations

from random import Random

from sqlalchemy import func, select

from customers import demo
from customers.identity import validate_credit_code, validate_id_number
from customers.models import Alert, Customer, CustomerTag, Snapshot
from tasks.models import Task
from web.demo import DemoContext, seed_org


def test_demo_customers(session):
    ctx = DemoContext(rng=Random(7), customers=300)
    seed_org(session, ctx)
    state = ctx.rng.getstate()
    demo.seed(session, ctx)
    session.commit()
    customers = list(session.scalars(select(Customer).order_by(Customer.id)))
    assert len(customers) == 300
    people = [c for c in customers if c.type == "individual"]
    assert all(not validate_id_number(c.id_number) for c in people)
    assert all(len(c.phone) == 11 for c in people)
    orgs = [c for c in customers if c.type != "individual"]
    assert {"县人民医院", "城关中学", "实验小学", "县财政局"} <= {c.name for c in orgs}
    assert all(not validate_credit_code(c.credit_code) for c in orgs)
    tags = set(session.scalars(select(CustomerTag.tag).distinct()))
    assert {
        "returning_migrant_worker",
        "self_employed",
        "civil_servant",
        "farmer",
        "institution_employee",
    } <= tags
    managers = {s.id: s for s in ctx.staff.values()}
    assert all(managers[c.manager_id].branch_id == c.branch_id for c in customers if c.manager_id)
    assert session.scalar(select(func.count()).select_from(Snapshot)) == 300 * 12
    assert session.scalar(select(func.count()).select_from(Customer).where(Customer.is_key.is_(True))) > 0
    alerts = session.scalar(select(func.count()).select_from(Alert))
    assert alerts > 0
    assert session.scalar(select(func.count()).select_from(Task).where(Task.source == "alert")) == alerts
    first = [(c.customer_no, c.name, c.id_number) for c in customers[:20]]

    # deterministic: the same seed gives the same people
    from customers.models import Holding

    for model in (Task, Alert, Snapshot, Holding, CustomerTag, Customer):  # the same seed, again
        session.query(model).delete()
    session.commit()
    ctx.rng.setstate(state)
    demo.seed(session, ctx)
    session.commit()
    again = [
        (c.customer_no, c.name, c.id_number) for c in session.scalars(select(Customer).order_by(Customer.id))
    ][:20]
    assert again == first
