"""Contact suggestion and contact windows (PRODUCT.md §4.5, §4.6)."""

import datetime as dt
from types import SimpleNamespace

import pytest

from customers.contact import (
    DEFAULT_RULES,
    format_window,
    next_window_start,
    parse_window,
    suggest_contact,
    validate_rules,
    within_window,
)
from customers.identity import make_id_number

TODAY = dt.date(2026, 6, 1)


def customer(**fields):
    base = {"birth_date": dt.date(1980, 3, 1), "marketing_consent": True, "do_not_contact": False, "tags": []}
    return base | fields


def test_do_not_contact_blocks_everything_even_a_stated_preference():
    s = suggest_contact(customer(do_not_contact=True, preferred_channel="visit"), marketing=False, on=TODAY)
    assert not s.allowed
    assert s.blocked_reason == "do_not_contact"
    assert s.channel is None and s.window is None
    assert "do not contact" in s.reason and "拒绝" in s.reason_zh


def test_missing_marketing_consent_blocks_marketing_but_not_service():
    refused = customer(marketing_consent=False, occupation="农民")
    s = suggest_contact(refused, on=TODAY)
    assert (s.allowed, s.blocked_reason) == (False, "no_marketing_consent")
    service = suggest_contact(refused, marketing=False, on=TODAY)
    assert service.allowed and service.channel == "visit"


def test_unknown_consent_follows_the_customer_base_default():
    assert suggest_contact(customer(marketing_consent=None), on=TODAY).allowed


def test_customer_preference_comes_first():
    s = suggest_contact(
        customer(occupation="农民", preferred_channel="上门", contact_window="18:00-21:00"), on=TODAY
    )
    assert (s.channel, s.window, s.allowed) == ("visit", "18:00-21:00", True)
    assert s.reason == "customer prefers visits, 18:00-21:00"
    assert s.reason_zh == "客户偏好上门，18:00-21:00"


def test_a_partial_preference_is_completed_by_the_rule():
    s = suggest_contact(customer(occupation="公务员", contact_window="19:00-20:00"), on=TODAY)
    assert (s.channel, s.window) == ("phone", "19:00-20:00")
    assert s.reason == "customer prefers 19:00-20:00; civil servant: phone after 18:00"


def test_an_unreadable_stored_preference_is_ignored():
    s = suggest_contact(
        customer(tags=["farmer"], preferred_channel="pigeon", contact_window="late"), on=TODAY
    )
    assert (s.channel, s.window, s.reason) == ("visit", "18:00-21:00", "farmer: evening visit")


@pytest.mark.parametrize(
    ("fields", "channel", "window", "reason_zh"),
    [
        ({"occupation": "农民"}, "visit", "18:00-21:00", "农户：傍晚上门"),
        ({"tags": ["farmer"]}, "visit", "18:00-21:00", "农户：傍晚上门"),
        ({"occupation": "公务员"}, "phone", "18:00-21:00", "公务员：18:00后电话联系"),
        ({"tags": ["returning_migrant_worker"]}, "visit", "14:00-20:00", "返乡农民工：上门走访"),
        ({"tags": ["self_employed"]}, "visit", "10:00-16:00", "个体工商户：10:00-16:00到店拜访"),
        (
            {"birth_date": dt.date(1955, 1, 1), "occupation": "农民"},
            "branch",
            "09:00-11:30",
            "超过65岁：上午到网点面谈",
        ),
        ({"occupation": "教师"}, "phone", "09:00-17:30", "无适用规则：工作时间电话联系"),
    ],
)
def test_default_rules(fields, channel, window, reason_zh):
    s = suggest_contact(customer(**fields), on=TODAY)
    assert (s.channel, s.window, s.reason_zh, s.allowed) == (channel, window, reason_zh, True)


def test_farmer_reason_in_english():
    assert suggest_contact(customer(occupation="farmer"), on=TODAY).reason == "farmer: evening visit"


def test_over_65_means_older_than_65():
    turned_65 = customer(birth_date=dt.date(1961, 6, 1))
    turns_66_tomorrow = customer(birth_date=dt.date(1960, 6, 2))
    turned_66 = customer(birth_date=dt.date(1960, 6, 1))
    assert suggest_contact(turned_65, on=TODAY).channel == "phone"
    assert suggest_contact(turns_66_tomorrow, on=TODAY).channel == "phone"
    assert suggest_contact(turned_66, on=TODAY).channel == "branch"


def test_age_and_gender_come_from_the_id_number_when_missing():
    id_number = make_id_number("511902", dt.date(1950, 1, 1), 2)
    rules = [
        {"when": {"gender": "F", "age_min": 70}, "channel": "visit", "window": "09:00-11:00", "reason": "x"}
    ]
    s = suggest_contact({"id_number": id_number, "birth_date": None}, rules, on=TODAY)
    assert (s.channel, s.reason) == ("visit", "x")


def test_configurable_rules_first_match_wins_and_all_conditions_must_hold():
    rules = [
        {
            "id": "young-women",
            "when": {"gender": "F", "age_max": 35},
            "channel": "wechat",
            "window": "12:00-13:00",
            "reason": "young woman: WeChat at lunch",
            "reason_zh": "青年女性：午间微信",
        },
        {
            "id": "teachers",
            "when": {"occupation_in": ["教师", "teacher"]},
            "channel": "phone",
            "window": "17:00-19:00",
            "reason": "teacher: after school",
            "reason_zh": "教师：放学后",
        },
    ]
    young_teacher = customer(gender="女", birth_date=dt.date(1995, 1, 1), occupation="教师")
    older_teacher = customer(gender="F", birth_date=dt.date(1970, 1, 1), occupation="教师")
    young_man = customer(gender="M", birth_date=dt.date(1995, 1, 1), occupation="司机")
    assert suggest_contact(young_teacher, rules, on=TODAY).channel == "wechat"
    assert suggest_contact(older_teacher, rules, on=TODAY).reason_zh == "教师：放学后"
    assert suggest_contact(young_man, rules, on=TODAY).reason == "no rule applies: phone in office hours"
    assert (
        suggest_contact(
            customer(birth_date=None), [{"when": {"age_min": 1}, "channel": "sms", "reason": "r"}], on=TODAY
        ).channel
        == "phone"
    )


def test_works_with_orm_like_objects():
    row = SimpleNamespace(
        birth_date=dt.date(1980, 1, 1),
        occupation="个体户",
        gender="M",
        preferred_channel=None,
        contact_window=None,
        do_not_contact=False,
        marketing_consent=True,
        tags=[],
        id_number=None,
    )
    assert suggest_contact(row, on=TODAY).window == "10:00-16:00"


def test_default_rules_are_valid_and_bad_rules_are_reported():
    assert validate_rules(DEFAULT_RULES) == []
    errors = validate_rules(
        [{"id": "bad", "when": {"height_min": 1, "gender": "X"}, "channel": "fax", "window": "9-5"}]
    )
    assert len(errors) == 5
    assert all(error.startswith("rule bad:") for error in errors)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [(dt.time(17, 59), False), (dt.time(18, 0), True), (dt.time(20, 59, 59), True), (dt.time(21, 0), False)],
)
def test_within_window(moment, inside):
    assert within_window("18:00-21:00", moment) is inside


def test_no_window_means_any_time():
    assert within_window(None, dt.time(3, 0))
    now = dt.datetime(2026, 6, 1, 3, 0)
    assert next_window_start(None, now) == now


def test_next_window_start():
    tz = dt.timezone(dt.timedelta(hours=8))
    before = dt.datetime(2026, 6, 1, 9, 30, tzinfo=tz)
    inside = dt.datetime(2026, 6, 1, 19, 15, tzinfo=tz)
    after = dt.datetime(2026, 6, 1, 21, 0, tzinfo=tz)
    assert next_window_start("18:00-21:00", before) == dt.datetime(2026, 6, 1, 18, 0, tzinfo=tz)
    assert next_window_start("18:00-21:00", inside) == inside
    assert next_window_start("18:00-21:00", after) == dt.datetime(2026, 6, 2, 18, 0, tzinfo=tz)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("18:00-21:00", "18:00-21:00"),
        ("9:00～11:30", "09:00-11:30"),
        ("18：00至21：00", "18:00-21:00"),
        ("20:00-24:00", "20:00-24:00"),
    ],
)
def test_window_spellings(text, canonical):
    assert format_window(text) == canonical


@pytest.mark.parametrize(
    "text", ["", "18:00", "21:00-18:00", "18:00-18:00", "25:00-26:00", "18:60-19:00", "evening"]
)
def test_bad_windows(text):
    with pytest.raises(ValueError):
        parse_window(text)


def test_returning_migrant_farmer_gets_the_evening_visit():
    """Journey 2: a farmer back from the city is visited after 18:00, and the card says why."""
    s = suggest_contact({"tags": ["returning_migrant_worker", "farmer"], "occupation": "农民"})
    assert (s.channel, s.window) == ("visit", "18:00-21:00")
    assert "farmer" in s.reason and "农户" in s.reason_zh
