"""System-written texts (history reasons, assignment reasons, notifications) are stored in English
and shown in the reader's language; what people typed is shown as written."""

from __future__ import annotations

import datetime as dt

import pytest
from flask_babel import force_locale

from config import clock
from tasks import services
from tests.factories import login, make_customer
from web.system_text import PATTERNS, translate

#: one stored text per pattern, with a piece of its expected Chinese
EXAMPLES = {
    "launched on or after its start date": "开始日期",
    "start date reached": "开始日期",
    "end date passed": "结束日期",
    "exclusive period ended": "独占",
    "deadline passed": "截止",
    "claim verified": "认定",
    "snooze date reached": "推迟",
    "its visit task was completed": "完成",
    "paid in run 2026-10/union": "2026-10/union",
    "follow-up: interested": "有意向",
    "appointment cancelled: 客户出差": "客户出差",
    "appointment missed: customer did not come": "客户未到",
    "customer did not come": "客户未到",
    "appointment cancelled": "取消",
    "relationship manager": "管户",
    "key customer → senior manager": "重点客户",
    "least loaded in branch (3 open)": "3",
    "least loaded in branch": "负荷",
    "whole grid (G03, 2 open)": "G03",
    "whole grid": "网格",
    "branch pool: every active manager is at capacity": "客户池",
    "branch pool: no active manager in the branch": "客户池",
    "branch pool": "客户池",
    "claimed from pool": "领取",
    "handed over: 调岗": "调岗",
    "handed over": "移交",
    "3 task(s) due tomorrow (2026-12-01)": "2026-12-01",
    "2 overdue task(s) in branch B01": "B01",
    "Retention task for 张*明 (asset_drop) untouched, 4 day(s) overdue — 李晓燕": "张*明",
    "Reminder: branch visit 2026-12-01 10:00 — 开定期": "开定期",
    "Appointment 2026-12-01 10:00: 张*明 — 开定期": "预约",
    "Appointment 2026-12-01 10:00 cancelled: 开定期 — 客户出差": "客户出差",
    "Appointment 2026-12-01 10:00 missed (customer did not come): 开定期": "未到",
    "Please accompany a key customer (重要客户): Appointment 2026-12-01 10:00: 张*明 — 开定期": "陪同",
    "Claim #12 (accounts_opened) was rejected: 同一手机号": "退回",
    "Claim #12 (accounts_opened) was reversed: 销户": "冲",
    "Claim #12 (accounts_opened) was verified": "认定",
    "New bounty (悬赏): 县医院代发 — ¥3000.00, deadline 2026-12-31": "县医院代发",
    "4 assignments of SJ-W1 are left unassigned in branch pools (B01: 4)": "SJ-W1",
}

#: where English pages show a code's label instead of the code itself
ENGLISH = {
    "Retention task for 张*明 (asset_drop) untouched, 4 day(s) overdue — 李晓燕": (
        "Retention task for 张*明 (asset drop) untouched, 4 day(s) overdue — 李晓燕"
    ),
}


@pytest.mark.parametrize("text", sorted(EXAMPLES))
def test_each_system_text_reads_in_english_as_stored_and_in_chinese_translated(app, text):
    with app.test_request_context():
        with force_locale("en"):
            assert translate(text) == ENGLISH.get(text, text)
        with force_locale("zh_CN"):
            zh = translate(text)
    assert zh != text and EXAMPLES[text] in zh, zh
    assert not any(word in zh for word in ("task(s)", "branch pool", "Appointment", "Claim #")), zh


def test_every_pattern_has_an_example(app):
    matched = set()
    for text in EXAMPLES:
        for i, (pattern, _msg, _shows) in enumerate(PATTERNS):
            if pattern.fullmatch(text):
                matched.add(i)
                break
    assert matched == set(range(len(PATTERNS)))


def test_what_people_typed_is_shown_as_written(app):
    with app.test_request_context(), force_locale("zh_CN"):
        for typed in ("春耕农忙，暂停两周", "end date passed because of rain", "", None):
            assert translate(typed) == (typed or "")


def test_notifications_page_in_chinese(client, session, union):
    cust = make_customer(session, union.b1, union.m1, is_key=True)
    session.commit()
    at = dt.datetime.combine(clock.today() + dt.timedelta(days=2), dt.time(10, 0))
    services.book_appointment(session, union.m1.id, cust, at, "开定期")
    session.commit()
    login(client, union.director_b1)
    page = client.get("/queue/notifications", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "Please accompany" not in page and "开定期" in page and "陪同" in page
    page = client.get("/queue/notifications", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Please accompany a key customer" in page
