"""Customer base pages: list filters, masked card, reveal (reason, audit, cap), exports, reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import insert, select

from customers import contribution
from customers.identity import make_id_number
from customers.masking import UNMASKED_ID_RE, UNMASKED_PHONE_RE
from customers.models import Customer, Holding, Snapshot
from org.models import AuditLog
from tests.factories import login, make_customer

ID1 = make_id_number("510921", dt.date(1985, 3, 14), 123)
PHONE1 = "13812345678"


@pytest.fixture
def people(session, union):
    """Customers of B01 (m1's and m2's), one of B02 (m3's), with personal data."""
    zhang = make_customer(
        session,
        union.b1,
        union.m1,
        name="张三明",
        id_number=ID1,
        phone=PHONE1,
        address="四川省遂宁市蓬溪县赤城镇上河街12号",
        occupation="农民",
        gender="M",
        area="rural",
        tags=["farmer"],
        needs={"preferred_product": "time_deposit", "term": "1y"},
    )
    li = make_customer(
        session,
        union.b1,
        union.m2,
        name="李四",
        id_number=make_id_number("510921", dt.date(1995, 6, 1), 224),
        phone="13998765432",
        occupation="公务员",
        gender="F",
        area="urban",
        birth_date=dt.date(1995, 6, 1),
        tags=["civil_servant"],
        needs={"preferred_product": "large_cd", "term": "3y"},
    )
    evil = make_customer(
        session,
        union.b1,
        union.m1,
        name='=HYPERLINK("http://x")',
        id_number=make_id_number("510921", dt.date(1970, 1, 1), 301),
        phone="15912341234",
        occupation="@SUM(1)",
    )
    far = make_customer(
        session,
        union.b2,
        union.m3,
        name="王五",
        id_number=make_id_number("510921", dt.date(1960, 1, 1), 11),
        phone="18811112222",
    )
    session.add(Holding(customer_id=zhang.id, product="mobile_banking"))
    months = [dt.date(2026, m + 1, 1) - dt.timedelta(days=1) for m in range(1, 11)]
    session.execute(
        insert(Snapshot),
        [{"customer_id": zhang.id, "as_of": d, "deposit_demand": Decimal(500_000)} for d in months]
        + [{"customer_id": li.id, "as_of": d, "deposit_demand": Decimal(20_000)} for d in months]
        + [{"customer_id": far.id, "as_of": d, "deposit_demand": Decimal(90_000)} for d in months],
    )
    session.commit()
    contribution.recompute(session, as_of=months[-1])
    session.commit()
    return {"zhang": zhang, "li": li, "evil": evil, "far": far}


def test_list_is_scoped_and_filtered(client, union, people):
    login(client, union.m1)
    page = client.get("/customers/").get_data(as_text=True)
    assert "张三明" in page  # m1's own customer: name in full
    assert "王五" not in page and "王*" not in page  # another branch
    assert people["li"].customer_no not in page  # m2's customer: not m1's
    login(client, union.director_b1)
    page = client.get("/customers/").get_data(as_text=True)
    assert "张*明" in page and "李*" in page and "王*" not in page
    assert "张三明" not in page  # outside the relationship: masked
    page = client.get("/customers/?tag=civil_servant").get_data(as_text=True)
    assert "李*" in page and "张*明" not in page
    page = client.get("/customers/?occupation=农民&area=rural").get_data(as_text=True)
    assert "张*明" in page and "李*" not in page
    page = client.get("/customers/?age=46-60").get_data(as_text=True)  # born 1980 (factory default)
    assert "张*明" in page and "李*" not in page
    page = client.get("/customers/?age=31-45").get_data(as_text=True)  # born 1995
    assert "李*" in page and "张*明" not in page
    page = client.get("/customers/?lacks=mobile_banking").get_data(as_text=True)
    assert "李*" in page and "张*明" not in page
    page = client.get("/customers/?key=1").get_data(as_text=True)
    assert "张*明" in page and "李*" not in page
    page = client.get("/customers/?q=李").get_data(as_text=True)
    assert "李*" in page and "张*明" not in page
    page = client.get(f"/customers/?q={people['zhang'].customer_no}").get_data(as_text=True)
    assert "张*明" in page and "李*" not in page


def test_list_pages_with_keyset(client, session, union):
    for i in range(55):
        make_customer(session, union.b1, union.m1, name=f"客户{i:02d}")
    session.commit()
    login(client, union.m1)
    first = client.get("/customers/").get_data(as_text=True)
    assert "客户54" in first and "客户04" not in first and "Next page" in first
    import re

    before = re.search(r"before=(\d+)", first).group(1)
    second = client.get(f"/customers/?before={before}").get_data(as_text=True)
    assert "客户04" in second and "客户54" not in second and "Next page" not in second


def test_card_is_masked_by_default(client, union, people):
    login(client, union.m1)
    r = client.get(f"/customers/{people['zhang'].id}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "5109**********" in page and ID1 not in page
    assert "138****5678" in page and PHONE1 not in page
    assert "上河街" not in page and "四川省遂宁市蓬溪县****" in page
    assert "data-chart=" in page and "mobile_banking" in page
    assert "Key customer" in page and "VIP" in page
    assert "farmer: evening visit" in page  # contact suggestion with its reason
    assert 'name="preferred_product"' in page  # the relationship manager edits needs


def test_guessed_id_is_404(client, union, people):
    login(client, union.m1)
    assert client.get(f"/customers/{people['far'].id}").status_code == 404
    assert client.get(f"/customers/{people['li'].id}").status_code == 404
    assert client.get("/customers/999999").status_code == 404
    assert (
        client.post(
            f"/customers/{people['far'].id}/reveal", data={"reason": "test", "fields": ["phone"]}
        ).status_code
        == 404
    )


def test_reveal_needs_reason_is_audited_and_capped(app, client, session, union, people):
    zhang = people["zhang"]
    login(client, union.m1)
    r = client.post(f"/customers/{zhang.id}/reveal", data={"reason": "", "fields": ["id_number"]})
    assert r.status_code == 422 and ID1 not in r.get_data(as_text=True)
    assert session.scalar(select(AuditLog).where(AuditLog.action == "reveal")) is None

    r = client.post(
        f"/customers/{zhang.id}/reveal",
        data={"reason": "客户来柜台办理业务核对身份", "fields": ["id_number", "phone"]},
    )
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and ID1 in page and PHONE1 in page
    assert r.headers["Cache-Control"] == "no-store"
    assert ID1 not in client.get(f"/customers/{zhang.id}").get_data(as_text=True)  # masked again
    row = session.scalar(select(AuditLog).where(AuditLog.action == "reveal"))
    assert row.actor_id == union.m1.id and row.object_id == str(zhang.id)
    assert sorted(row.fields) == ["id_number", "phone"] and row.reason == "客户来柜台办理业务核对身份"
    assert row.at is not None

    # a manager who is not the relationship manager may not reveal
    login(client, union.m2)
    assert client.get(f"/customers/{zhang.id}").status_code == 404  # not even visible
    # a checker sees the card but may not reveal
    login(client, union.checker)
    assert client.get(f"/customers/{zhang.id}").status_code == 200
    assert (
        client.post(
            f"/customers/{zhang.id}/reveal", data={"reason": "curious", "fields": ["phone"]}
        ).status_code
        == 403
    )
    # the branch director may
    login(client, union.director_b1)
    assert (
        client.post(
            f"/customers/{zhang.id}/reveal", data={"reason": "投诉核查", "fields": ["phone"]}
        ).status_code
        == 200
    )

    # the daily cap
    settings = app.config["SETTINGS"]
    object.__setattr__(settings, "reveal_limit_per_day", 2)
    login(client, union.m1)
    assert (
        client.post(
            f"/customers/{zhang.id}/reveal", data={"reason": "第二次核对", "fields": ["phone"]}
        ).status_code
        == 200
    )
    r = client.post(f"/customers/{zhang.id}/reveal", data={"reason": "第三次核对", "fields": ["phone"]})
    assert r.status_code == 429 and PHONE1 not in r.get_data(as_text=True)
    assert session.scalar(select(AuditLog).where(AuditLog.reason == "第三次核对")) is None


def test_needs_are_edited_by_the_relationship_manager(client, session, union, people):
    zhang = people["zhang"]
    login(client, union.m1)
    r = client.post(
        f"/customers/{zhang.id}/needs",
        data={
            "preferred_product": "wealth",
            "term": "3y",
            "return_expectation": "high",
            "risk_appetite": "balanced",
        },
    )
    assert r.status_code == 303
    session.expire_all()
    assert session.get(Customer, zhang.id).needs == {
        "preferred_product": "wealth",
        "term": "3y",
        "return_expectation": "high",
        "risk_appetite": "balanced",
    }
    r = client.post(f"/customers/{zhang.id}/needs", data={"preferred_product": "bitcoin"})
    assert r.status_code == 303
    session.expire_all()
    assert (
        session.get(Customer, zhang.id).needs["preferred_product"] == "wealth"
    )  # bad value: nothing changed
    login(client, union.checker)
    assert client.post(f"/customers/{zhang.id}/needs", data={"term": "1y"}).status_code == 403


def test_export_is_masked_audited_and_neutralised(client, session, union, people):
    login(client, union.director_b1)
    r = client.get("/customers/export.csv")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    text = r.data.decode("utf-8-sig")
    assert not UNMASKED_ID_RE.search(text) and not UNMASKED_PHONE_RE.search(text)
    rows = list(csv.reader(io.StringIO(text)))
    names = {row[1] for row in rows[1:]}
    assert "张*明" in names and "王*" not in names  # scoped
    evil = next(row for row in rows[1:] if row[0] == people["evil"].customer_no)
    assert evil[1].startswith("'=") and evil[10] == "'@SUM(1)"
    log = session.scalar(select(AuditLog).where(AuditLog.action == "export"))
    assert log.actor_id == union.director_b1.id and log.detail["rows"] == 3 and log.detail["masked"] is True

    r = client.get("/customers/export.xlsx?tag=farmer")
    assert r.status_code == 200 and r.data[:2] == b"PK"
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(r.data)).active
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert len(values) == 2 and values[1][1] == "张*明" and values[1][7] == "5109**********" + ID1[-4:]
    assert session.query(AuditLog).filter_by(action="export").count() == 2


def test_full_export_is_admin_only_with_reason(client, session, union, people):
    login(client, union.director_b1)
    assert client.post("/customers/export", data={"reason": "核对", "fmt": "csv"}).status_code == 403
    login(client, union.admin)
    r = client.post("/customers/export", data={"reason": "", "fmt": "csv"})
    assert r.status_code == 303
    r = client.post("/customers/export", data={"reason": "监管报送核对", "fmt": "csv", "query": "tag=farmer"})
    text = r.data.decode("utf-8-sig")
    assert ID1 in text and "李四" not in text
    log = session.scalars(select(AuditLog).where(AuditLog.action == "export")).all()
    assert len(log) == 1 and log[0].reason == "监管报送核对" and log[0].detail["masked"] is False


def test_needs_report(client, union, people):
    login(client, union.director_b1)
    r = client.get("/customers/needs?dimension=occupation&need=preferred_product")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="needs-table"' in page and "data-chart=" in page
    assert "农民" in page and "公务员" in page and "time_deposit" in page and "large_cd" in page
    r = client.get("/customers/needs?dimension=gender&need=term")
    assert r.status_code == 200 and "3y" in r.get_data(as_text=True)
    # segments combine: occupation × urban/rural × gender as filters, age band as rows
    page = client.get("/customers/needs?dimension=age_band&need=term&area=urban&gender=F").get_data(
        as_text=True
    )
    assert "3y" in page and "1y" not in page  # only 李四 (urban, F, 31-45)
    page = client.get("/customers/needs?dimension=area&need=term&occupation=农民").get_data(as_text=True)
    assert "1y" in page and "3y" not in page


def test_key_customers_page(client, union, people):
    login(client, union.director_b1)
    r = client.get(f"/customers/key?branch={union.b1.id}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "data-chart=" in page and "张*明" in page
    assert client.get(f"/customers/key?branch={union.b2.id}").status_code == 404
    login(client, union.director)
    assert client.get(f"/customers/key?branch={union.b2.id}").status_code == 200


def test_audit_page_is_admin_only_and_filterable(client, session, union, people):
    login(client, union.m1)
    client.post(f"/customers/{people['zhang'].id}/reveal", data={"reason": "核对身份", "fields": ["phone"]})
    assert client.get("/admin/audit").status_code == 403
    login(client, union.admin)
    page = client.get("/admin/audit?action=reveal").get_data(as_text=True)
    assert "核对身份" in page and "M0101" in page
    page = client.get("/admin/audit?action=export").get_data(as_text=True)
    assert "核对身份" not in page
    page = client.get("/admin/audit?staff=M0101&from=2000-01-01").get_data(as_text=True)
    assert "核对身份" in page


@pytest.mark.parametrize("who", ["admin", "director", "director_b1", "m1", "checker"])
def test_canary_no_full_id_or_phone_on_list_and_card(client, union, people, who):
    """Render the list and every visible card for each role: no full ID number or phone appears."""
    login(client, getattr(union, who))
    pages = [client.get("/customers/").get_data(as_text=True)]
    for c in people.values():
        r = client.get(f"/customers/{c.id}")
        if r.status_code == 200:
            pages.append(r.get_data(as_text=True))
    for url in (
        "/customers/key",
        "/customers/alerts",
        "/customers/needs",
        "/customers/?lacks=mobile_banking",
    ):
        pages.append(client.get(url).get_data(as_text=True))
    assert len(pages) >= 3
    for page in pages:
        assert not UNMASKED_ID_RE.search(page), who
        assert not UNMASKED_PHONE_RE.search(page), who


def test_card_shows_alerts_with_detail(client, session, union, people):
    from customers import alerts

    zhang = people["zhang"]
    session.execute(
        insert(Snapshot),
        [{"customer_id": zhang.id, "as_of": dt.date(2026, 11, 30), "deposit_demand": Decimal(100_000)}],
    )
    session.commit()
    alerts.detect(session, "2026-11")
    session.commit()
    login(client, union.m1)
    page = client.get(f"/customers/{zhang.id}").get_data(as_text=True)
    assert "asset drop" in page and "500,000.00 → 100,000.00" in page


def test_alerts_page_lists_scoped_alerts_with_their_task(client, session, union, people):
    from customers import alerts

    rows = []
    for key in ("zhang", "far"):
        rows.append(
            {"customer_id": people[key].id, "as_of": dt.date(2026, 11, 30), "deposit_demand": Decimal(1_000)}
        )
    session.execute(insert(Snapshot), rows)
    session.commit()
    alerts.detect(session, "2026-11")
    session.commit()
    login(client, union.director_b1)
    page = client.get("/customers/alerts").get_data(as_text=True)
    assert "asset drop" in page and "张*明" in page and "王*" not in page and "due" in page
    assert "张*明" not in client.get("/customers/alerts?type=risk_change").get_data(as_text=True)
    login(client, union.director)
    page = client.get("/customers/alerts?period=2026-11").get_data(as_text=True)
    assert "张*明" in page and "王*" in page


def test_audit_page_shows_and_filters_the_unions_local_time(client, session, union, monkeypatch):
    """Audit rows are stored in the union's wall-clock time: a reveal at 23:30 on the 27th shows
    as 23:30 and is found by a filter on the 27th, not the 28th."""
    import datetime as dt

    from config import clock
    from org.services import audit

    monkeypatch.setattr(clock, "now", lambda: dt.datetime(2026, 11, 27, 23, 30))
    audit(session, union.m1.id, "reveal", "customer", 1, fields=["phone"], reason="深夜核对")
    session.commit()
    login(client, union.admin)
    page = client.get("/admin/audit?from=2026-11-27&to=2026-11-27").get_data(as_text=True)
    assert "深夜核对" in page and "2026-11-27 23:30" in page
    page = client.get("/admin/audit?from=2026-11-28&to=2026-11-28").get_data(as_text=True)
    assert "深夜核对" not in page
