"""Organisation admin pages: branches, staff, roles with scope, status, delegation, passwords."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from org.models import AuditLog, Branch, Staff
from org.services import authenticate
from tests.factories import login


def staff_form(branch_id: int, **over) -> dict:
    data = {
        "staff_no": "M0301",
        "name": "钱多多",
        "branch_id": str(branch_id),
        "email": "qian@example.cn",
        "phone": "139 0000 1234",
        "hired_on": "2024-03-01",
        "status": "active",
        "capacity": "300",
        "substitute_no": "",
        "away_until": "",
        "role_manager": "y",
        "scope_manager": "",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def test_admin_creates_and_edits_a_branch(client, session, union):
    login(client, union.admin)
    page = client.get("/admin/branches")
    assert page.status_code == 200 and "城关信用社" in page.text
    r = client.post(
        "/admin/branches/new", data={"code": "B03", "name": "玉丰信用社", "parent_id": str(union.root.id)}
    )
    assert r.status_code == 303
    b3 = session.scalar(select(Branch).where(Branch.code == "B03"))
    assert b3.parent_id == union.root.id
    # per-field messages: duplicate code, empty name, a branch under its own child
    r = client.post("/admin/branches/new", data={"code": "B01", "name": "", "parent_id": ""})
    assert r.status_code == 422
    assert "Another branch already has this code." in r.text and "Enter the branch name." in r.text
    r = client.post(
        f"/admin/branches/{union.root.id}",
        data={"code": "U00", "name": "县联社", "parent_id": str(union.b1.id)},
    )
    assert r.status_code == 422 and "cannot be placed under itself" in r.text
    session.rollback()
    assert session.get(Branch, union.root.id).parent_id is None
    assert session.scalar(select(AuditLog).where(AuditLog.action == "branch_create")).object_id == "B03"


def test_admin_creates_staff_with_scoped_roles(client, session, union):
    login(client, union.admin)
    data = staff_form(union.b2.id, role_director="y", scope_director=str(union.b2.id), password="secret-123")
    r = client.post("/admin/staff/new", data=data)
    assert r.status_code == 303, r.text
    session.rollback()
    s = session.scalar(select(Staff).where(Staff.staff_no == "M0301"))
    assert s.phone == "13900001234" and s.capacity == 300 and s.hired_on == dt.date(2024, 3, 1)
    assert {(r.role, r.branch_id) for r in s.roles} == {("manager", None), ("director", union.b2.id)}
    assert authenticate(session, "M0301", "secret-123").id == s.id
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "staff_create"))
    assert audit.object_id == "M0301"


def test_staff_form_messages_per_field(client, session, union):
    login(client, union.admin)
    bad = staff_form(
        union.b1.id,
        staff_no="M0101",  # taken
        email="not-mail",
        phone="12345",
        capacity="0",
        substitute_no="NOPE",
        status="on_leave",
        role_manager=None,
    )
    r = client.post("/admin/staff/new", data=bad)
    assert r.status_code == 422
    for message in (
        "Another staff member already has this number.",
        "Not an e-mail address.",
        "Between 1 and 100000.",
        "No staff member with this number.",
        "On leave: give the date the person is back",
        "Give at least one role.",
    ):
        assert message in r.text, message
    assert "is-invalid" in r.text


def test_status_and_delegation(client, session, union):
    login(client, union.admin)
    data = staff_form(
        union.b1.id,
        staff_no="M0101",
        name="李晓燕",
        status="on_leave",
        away_until="2026-12-31",
        substitute_no="M0102",
        senior="y",
    )
    r = client.post(f"/admin/staff/{union.m1.id}", data=data)
    assert r.status_code == 303, r.text
    session.rollback()
    m1 = session.get(Staff, union.m1.id)
    assert (m1.status, m1.away_until, m1.substitute_id, m1.senior) == (
        "on_leave",
        dt.date(2026, 12, 31),
        union.m2.id,
        True,
    )
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "staff_update"))
    assert {"status", "away_until", "substitute_id", "senior"} <= set(audit.fields)
    # nobody substitutes for themselves
    r = client.post(
        f"/admin/staff/{union.m2.id}", data=staff_form(union.b1.id, staff_no="M0102", substitute_no="M0102")
    )
    assert r.status_code == 422 and "cannot substitute for themselves" in r.text


def test_password_reset_ends_sessions_and_unlocks(client, session, union):
    m1 = session.get(Staff, union.m1.id)
    m1.failed_logins = 3
    epoch = m1.session_epoch
    session.commit()
    login(client, union.admin)
    r = client.post(
        f"/admin/staff/{union.m1.id}/password", data={"new_password": "short", "confirm": "short"}
    )
    assert r.status_code == 303
    session.rollback()
    assert session.get(Staff, union.m1.id).password_hash is None
    r = client.post(
        f"/admin/staff/{union.m1.id}/password",
        data={"new_password": "brand-new-pw", "confirm": "brand-new-pw"},
    )
    assert r.status_code == 303
    session.rollback()
    m1 = session.get(Staff, union.m1.id)
    assert m1.session_epoch == epoch + 1 and m1.failed_logins == 0
    assert authenticate(session, "M0101", "brand-new-pw").id == m1.id
    assert session.scalar(select(AuditLog).where(AuditLog.action == "password_reset")).object_id == "M0101"


def test_director_sees_own_branch_staff_read_only(client, session, union):
    login(client, union.director_b1)
    page = client.get("/admin/staff")
    assert page.status_code == 200
    assert "M0101" in page.text and "M0201" not in page.text
    detail = client.get(f"/admin/staff/{union.m1.id}")
    assert detail.status_code == 200 and "Read-only" in detail.text
    assert client.get(f"/admin/staff/{union.m3.id}").status_code == 404
    assert (
        client.post(f"/admin/staff/{union.m1.id}", data=staff_form(union.b1.id, staff_no="M0101")).status_code
        == 403
    )
    assert client.get("/admin/branches").status_code == 403
    assert client.get("/admin/imports").status_code == 403
    assert client.post(f"/admin/staff/{union.m1.id}/password", data={}).status_code == 403


def test_managers_and_anonymous_are_kept_out(client, union):
    assert client.get("/admin/staff").status_code in (302, 401)
    login(client, union.m1)
    assert client.get("/admin/staff").status_code == 403
    assert client.get("/admin/branches/new").status_code == 403


def test_staff_list_search_and_nav(client, union):
    login(client, union.admin)
    page = client.get("/admin/staff?q=M01")
    assert "M0101" in page.text and "M0201" not in page.text
    assert "D0101" not in client.get("/admin/staff?status=on_leave").text
    home = client.get("/admin/staff")
    for label in ("Staff", "Branches", "Imports"):
        assert f">{label}</a>" in home.text


def test_forms_need_csrf(csrf_app, union):
    client = csrf_app.test_client()
    login(client, union.admin)
    r = client.post("/admin/branches/new", data={"code": "B09", "name": "x"})
    assert r.status_code in (400, 422)
    with csrf_app.app_context():
        from config.database import db

        assert db.session.scalar(select(Branch).where(Branch.code == "B09")) is None


def test_an_admin_cannot_lock_themselves_out(client, session, union):
    login(client, union.admin)
    data = staff_form(union.root.id, staff_no="A0001", name="管理员", status="departed", role_manager="y")
    r = client.post(f"/admin/staff/{union.admin.id}", data=data)
    assert r.status_code == 422
    assert "You cannot take away your own administrator role." in r.text
    assert "You cannot make your own account inactive." in r.text
    session.rollback()
    admin = session.get(Staff, union.admin.id)
    assert admin.status == "active" and admin.has_role("admin")
