"""Choosing how to follow up (PRODUCT.md §4.6, 根据客户的年龄、职业、性别等特征选择适宜的时间、方式和内容).

:func:`suggest_contact` gives a channel, a time window and the reason for them, in this order:

1. ``do_not_contact`` blocks every contact;
2. a marketing contact is blocked when the customer withheld marketing consent;
3. the customer's own preference (channel and/or window);
4. the first configurable rule whose conditions all hold (age, occupation, gender, tags);
5. a default (phone in office hours).

:func:`within_window` and :func:`next_window_start` let the task queue enforce the window.
Customers may be ORM objects or dicts; only attributes/keys are read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from config.clock import today as _today
from customers.identity import birth_date_from_id, gender_from_id

#: Channels a suggestion may name, with their Chinese labels.
CHANNELS: dict[str, str] = {
    "phone": "电话",
    "visit": "上门",
    "branch": "到网点",
    "wechat": "微信",
    "sms": "短信",
}
# Chinese (and a few English) spellings met in core-banking exports and forms.
_CHANNEL_ALIASES: dict[str, str] = {
    "电话": "phone",
    "手机": "phone",
    "call": "phone",
    "上门": "visit",
    "走访": "visit",
    "上门走访": "visit",
    "visits": "visit",
    "网点": "branch",
    "到网点": "branch",
    "柜面": "branch",
    "in_person": "branch",
    "微信": "wechat",
    "短信": "sms",
}
_CHANNEL_EN = {
    "phone": "phone calls",
    "visit": "visits",
    "branch": "the branch",
    "wechat": "WeChat",
    "sms": "SMS",
}

#: Occupations (free text in the customer base) that carry one of the rule traits.
OCCUPATION_TRAITS: dict[str, str] = {
    "farmer": "farmer",
    "农民": "farmer",
    "农户": "farmer",
    "务农": "farmer",
    "种养殖户": "farmer",
    "civil_servant": "civil_servant",
    "civil servant": "civil_servant",
    "公务员": "civil_servant",
    "self_employed": "self_employed",
    "self-employed": "self_employed",
    "个体工商户": "self_employed",
    "个体户": "self_employed",
    "returning_migrant_worker": "returning_migrant_worker",
    "返乡农民工": "returning_migrant_worker",
}

#: Marketing consent assumed when a record does not say (the customer base default).
DEFAULT_MARKETING_CONSENT = True

#: Rules in priority order. Age first: a retired civil servant of 70 is met at the branch.
#: ``tags_any`` matches the customer's tags and the trait of their occupation (农民 → farmer).
DEFAULT_RULES: list[dict[str, Any]] = [
    {
        "id": "over_65",
        "when": {"age_min": 66},
        "channel": "branch",
        "window": "09:00-11:30",
        "reason": "over 65: in person at the branch, mornings",
        "reason_zh": "超过65岁：上午到网点面谈",
    },
    {
        "id": "civil_servant",
        "when": {"tags_any": ["civil_servant"]},
        "channel": "phone",
        "window": "18:00-21:00",
        "reason": "civil servant: phone after 18:00",
        "reason_zh": "公务员：18:00后电话联系",
    },
    {
        "id": "self_employed",
        "when": {"tags_any": ["self_employed"]},
        "channel": "visit",
        "window": "10:00-16:00",
        "reason": "self-employed: visit the shop 10:00-16:00",
        "reason_zh": "个体工商户：10:00-16:00到店拜访",
    },
    {
        "id": "farmer",
        "when": {"tags_any": ["farmer"]},
        "channel": "visit",
        "window": "18:00-21:00",
        "reason": "farmer: evening visit",
        "reason_zh": "农户：傍晚上门",
    },
    {
        "id": "returning_migrant_worker",
        "when": {"tags_any": ["returning_migrant_worker"]},
        "channel": "visit",
        "window": "14:00-20:00",
        "reason": "returning migrant worker: home visit",
        "reason_zh": "返乡农民工：上门走访",
    },
]

DEFAULT_SUGGESTION: dict[str, str] = {
    "channel": "phone",
    "window": "09:00-17:30",
    "reason": "no rule applies: phone in office hours",
    "reason_zh": "无适用规则：工作时间电话联系",
}

_WINDOW_RE = re.compile(r"(\d{1,2})[:：](\d{2})\s*[-–~～至到]\s*(\d{1,2})[:：](\d{2})")
_RULE_CONDITIONS = frozenset({"age_min", "age_max", "occupation_in", "gender", "tags_any"})


@dataclass(frozen=True, slots=True)
class Suggestion:
    """How and when to contact a customer, and why. ``allowed`` False means: do not contact."""

    channel: str | None
    window: str | None
    reason: str
    reason_zh: str
    allowed: bool = True
    blocked_reason: str | None = None  # "do_not_contact" or "no_marketing_consent"


def normalise_channel(value: object) -> str | None:
    """``"上门"`` → ``"visit"``; ``None``/empty → ``None``; an unknown channel raises ``ValueError``."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    key = _CHANNEL_ALIASES.get(text) or _CHANNEL_ALIASES.get(text.lower()) or text.lower()
    if key not in CHANNELS:
        raise ValueError(f"unknown channel {text!r}; expected one of {', '.join(CHANNELS)}")
    return key


def parse_window(window: str | tuple[dt.time, dt.time]) -> tuple[dt.time, dt.time]:
    """``"18:00-21:00"`` → ``(time(18), time(21))``. Raises ``ValueError`` for a bad window.

    Accepts full-width colons and ``–``/``~``/``至`` between the times; the start must be
    before the end (windows do not cross midnight).
    """
    if isinstance(window, tuple):
        start, end = window
    else:
        match = _WINDOW_RE.fullmatch(str(window).strip())
        if match is None:
            raise ValueError(f"contact window {window!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"contact window {window!r} has an impossible time")
        start = dt.time(h1, m1)
        end = dt.time.max if h2 == 24 else dt.time(h2, m2)
    if not start < end:
        raise ValueError(f"contact window {window!r} must start before it ends")
    return start, end


def format_window(window: str | tuple[dt.time, dt.time]) -> str:
    """The canonical ``HH:MM-HH:MM`` spelling of a window (``"9:00～11:30"`` → ``"09:00-11:30"``)."""
    start, end = parse_window(window)
    end_text = "24:00" if end == dt.time.max else f"{end:%H:%M}"
    return f"{start:%H:%M}-{end_text}"


def within_window(window: str | tuple[dt.time, dt.time] | None, moment: dt.time) -> bool:
    """Whether ``moment`` falls in the window (start inclusive, end exclusive); no window: always."""
    if not window:
        return True
    start, end = parse_window(window)
    return start <= moment.replace(tzinfo=None) < end


def next_window_start(window: str | tuple[dt.time, dt.time] | None, moment: dt.datetime) -> dt.datetime:
    """The earliest moment at or after ``moment`` that lies in the window (same tzinfo).

    Inside the window that is ``moment`` itself; before it, today's start; after it, tomorrow's.
    """
    if not window:
        return moment
    start, _ = parse_window(window)
    if within_window(window, moment.time()):
        return moment
    day = moment.date() if moment.time() < start else moment.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, start, tzinfo=moment.tzinfo)


def age_on(birth_date: dt.date, on: dt.date) -> int:
    """Age in whole years on a date."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def customer_traits(customer: Any) -> set[str]:
    """Tags of a customer plus the trait of their occupation (``农民`` → ``farmer``)."""
    traits = {str(tag).strip() for tag in (_get(customer, "tags") or ()) if str(tag).strip()}
    traits = {OCCUPATION_TRAITS.get(tag, OCCUPATION_TRAITS.get(tag.lower(), tag)) for tag in traits}
    occupation = str(_get(customer, "occupation") or "").strip()
    trait = OCCUPATION_TRAITS.get(occupation) or OCCUPATION_TRAITS.get(occupation.lower())
    if trait:
        traits.add(trait)
    return traits


def rule_matches(rule: Mapping[str, Any], customer: Any, on: dt.date) -> bool:
    """Whether every condition of ``rule["when"]`` holds; a condition on unknown data does not hold."""
    when = rule.get("when") or {}
    if "age_min" in when or "age_max" in when:
        birth = _birth_date(customer)
        if birth is None:
            return False
        age = age_on(birth, on)
        if "age_min" in when and age < int(when["age_min"]):
            return False
        if "age_max" in when and age > int(when["age_max"]):
            return False
    if "occupation_in" in when:
        occupation = str(_get(customer, "occupation") or "").strip()
        wanted = {str(item) for item in when["occupation_in"]}
        if not occupation or not ({occupation, OCCUPATION_TRAITS.get(occupation, occupation)} & wanted):
            return False
    if "gender" in when:
        if _gender(customer) != when["gender"]:
            return False
    if "tags_any" in when:
        if not customer_traits(customer) & {str(tag) for tag in when["tags_any"]}:
            return False
    return True


def validate_rules(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """Errors of a rule list loaded from configuration; empty when every rule is usable."""
    errors: list[str] = []
    for index, rule in enumerate(rules, start=1):
        label = f"rule {rule.get('id', index)}"
        when = rule.get("when") or {}
        if not isinstance(when, Mapping):
            errors.append(f"{label}: 'when' must be a mapping")
            continue
        unknown = set(when) - _RULE_CONDITIONS
        if unknown:
            errors.append(f"{label}: unknown conditions {', '.join(sorted(unknown))}")
        if rule.get("channel") not in CHANNELS:
            errors.append(f"{label}: channel must be one of {', '.join(CHANNELS)}")
        try:
            if rule.get("window"):
                parse_window(rule["window"])
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
        if not rule.get("reason"):
            errors.append(f"{label}: a reason is required")
        if "gender" in when and when["gender"] not in ("M", "F"):
            errors.append(f"{label}: gender must be M or F")
    return errors


def suggest_contact(
    customer: Any,
    rules: Sequence[Mapping[str, Any]] | None = None,
    *,
    marketing: bool = True,
    on: dt.date | None = None,
) -> Suggestion:
    """Suggest channel and window for contacting ``customer``, with the reason in English and Chinese.

    ``rules`` default to :data:`DEFAULT_RULES`; ``marketing`` False is a service contact (a
    retention call after an alert is marketing; answering a complaint is not), which a missing
    marketing consent does not block. ``on`` is the day ages are computed for (today).
    """
    if _truthy(_get(customer, "do_not_contact")):
        return Suggestion(
            None,
            None,
            "do not contact: the customer asked not to be contacted",
            "拒绝联系：客户要求不再联系",
            allowed=False,
            blocked_reason="do_not_contact",
        )
    consent = _get(customer, "marketing_consent")
    if marketing and not (DEFAULT_MARKETING_CONSENT if consent is None else _truthy(consent)):
        return Suggestion(
            None,
            None,
            "no marketing consent: only service contacts are allowed",
            "未同意营销：仅可进行服务性联系",
            allowed=False,
            blocked_reason="no_marketing_consent",
        )
    on = on or _today()
    base = next(
        (rule for rule in (DEFAULT_RULES if rules is None else rules) if rule_matches(rule, customer, on)),
        DEFAULT_SUGGESTION,
    )
    channel, window = base["channel"], base.get("window")
    reason, reason_zh = base["reason"], base.get("reason_zh") or base["reason"]

    preferred_channel = _safe(normalise_channel, _get(customer, "preferred_channel"))
    preferred_window = _safe(format_window, _get(customer, "contact_window") or None)
    if preferred_channel or preferred_window:
        parts_en = [_CHANNEL_EN[preferred_channel]] if preferred_channel else []
        parts_zh = [CHANNELS[preferred_channel]] if preferred_channel else []
        if preferred_window:
            parts_en.append(preferred_window)
            parts_zh.append(preferred_window)
        own_en, own_zh = "customer prefers " + ", ".join(parts_en), "客户偏好" + "，".join(parts_zh)
        if preferred_channel and preferred_window:
            reason, reason_zh = own_en, own_zh
        else:
            reason, reason_zh = f"{own_en}; {reason}", f"{own_zh}；{reason_zh}"
        channel = preferred_channel or channel
        window = preferred_window or window
    return Suggestion(channel, window, reason, reason_zh)


def _get(customer: Any, name: str) -> Any:
    if isinstance(customer, Mapping):
        return customer.get(name)
    return getattr(customer, name, None)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "y", "是"}
    return bool(value)


def _birth_date(customer: Any) -> dt.date | None:
    value = _get(customer, "birth_date")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return birth_date_from_id(_get(customer, "id_number"))


def _gender(customer: Any) -> str | None:
    value = str(_get(customer, "gender") or "").strip()
    value = {"男": "M", "女": "F", "m": "M", "f": "F"}.get(value, value)
    return value or gender_from_id(_get(customer, "id_number"))


def _safe(parse: Any, value: Any) -> Any:
    """A stored preference that no longer parses is ignored rather than breaking the queue."""
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except ValueError:
        return None
