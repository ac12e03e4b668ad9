"""Texts the system itself writes in English, shown in the reader's language.

History reasons (``transition_record.reason``), assignment reasons and notification texts are
stored as the code wrote them — English, with their details (a date, a count, a masked name)
inside. They stay English in the database, the API and the log notifier; pages translate them on
display: each known shape is one regular expression whose named groups fill a gettext message
with the same placeholders (so English pages show exactly the stored text). Anything a person
typed — a pause reason, a rejection reason — matches nothing and is shown as written.

A new system text is one entry in :data:`PATTERNS` (and its translation in the catalogue);
``tests/unit/test_system_text.py`` holds an example of each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from web import labels

DAY = r"\d{4}-\d{2}-\d{2}"
MINUTE = DAY + r" \d{2}:\d{2}"


def _state(value: str) -> str:
    return str(labels.STATES.get(value, value))


def _value(value: str) -> str:
    return str(labels.VALUES.get(value) or labels.STATES.get(value) or value)


#: (pattern, message, how to show each group: a function, or None for as stored)
PATTERNS: list[tuple[re.Pattern[str], Any, dict[str, Callable[[str], str]]]] = [
    # -- history reasons written by jobs and services
    (re.compile(r"launched on or after its start date"), _l("launched on or after its start date"), {}),
    (re.compile(r"start date reached"), _l("start date reached"), {}),
    (re.compile(r"end date passed"), _l("end date passed"), {}),
    (re.compile(r"exclusive period ended"), _l("exclusive period ended"), {}),
    (re.compile(r"deadline passed"), _l("deadline passed"), {}),
    (re.compile(r"claim verified"), _l("claim verified"), {}),
    (re.compile(r"snooze date reached"), _l("snooze date reached"), {}),
    (re.compile(r"its visit task was completed"), _l("its visit task was completed"), {}),
    (re.compile(r"paid in run (?P<run>.+)"), _l("paid in run %(run)s"), {}),
    (re.compile(r"follow-up: (?P<reaction>\w+)"), _l("follow-up: %(reaction)s"), {"reaction": _state}),
    (
        re.compile(r"appointment cancelled: (?P<why>.+)"),
        _l("appointment cancelled: %(why)s"),
        {"why": lambda s: translate(s)},
    ),
    (
        re.compile(r"appointment missed: (?P<why>.+)"),
        _l("appointment missed: %(why)s"),
        {"why": lambda s: translate(s)},
    ),
    (re.compile(r"customer did not come"), _l("customer did not come"), {}),
    (re.compile(r"appointment cancelled"), _l("appointment cancelled"), {}),
    # -- why an assignment went to its owner (campaigns/assignment.py, campaigns/pool.py)
    (re.compile(r"relationship manager"), _l("relationship manager"), {}),
    (re.compile(r"key customer → senior manager"), _l("key customer → senior manager"), {}),
    (
        re.compile(r"least loaded in branch \((?P<n>\d+) open\)"),
        _l("least loaded in branch (%(n)s open)"),
        {},
    ),
    (re.compile(r"least loaded in branch"), _l("least loaded in branch"), {}),
    (
        re.compile(r"whole grid \((?P<grid>.+), (?P<n>\d+) open\)"),
        _l("whole grid (%(grid)s, %(n)s open)"),
        {},
    ),
    (re.compile(r"whole grid"), _l("whole grid"), {}),
    (
        re.compile(r"branch pool: every active manager is at capacity"),
        _l("branch pool: every active manager is at capacity"),
        {},
    ),
    (
        re.compile(r"branch pool: no active manager in the branch"),
        _l("branch pool: no active manager in the branch"),
        {},
    ),
    (re.compile(r"branch pool"), _l("branch pool"), {}),
    (re.compile(r"claimed from pool"), _l("claimed from pool"), {}),
    (re.compile(r"handed over: (?P<why>.+)"), _l("handed over: %(why)s"), {}),
    (re.compile(r"handed over"), _l("handed over"), {}),
    # -- notifications (tasks/jobs.py, tasks/services.py, tasks/claims.py, campaigns/…)
    (
        re.compile(rf"(?P<n>\d+) task\(s\) due tomorrow \((?P<day>{DAY})\)"),
        _l("%(n)s task(s) due tomorrow (%(day)s)"),
        {},
    ),
    (
        re.compile(r"(?P<n>\d+) overdue task\(s\) in branch (?P<code>\S+)"),
        _l("%(n)s overdue task(s) in branch %(code)s"),
        {},
    ),
    (
        re.compile(
            r"Retention task for (?P<who>.+) \((?P<alert>\w+)\) untouched, (?P<late>\d+) day\(s\) overdue"
            r" — (?P<manager>.+)"
        ),
        _l("Retention task for %(who)s (%(alert)s) untouched, %(late)s day(s) overdue — %(manager)s"),
        {"alert": _value, "manager": lambda s: str(_l("no owner")) if s == "no owner" else s},
    ),
    (
        re.compile(rf"Reminder: branch visit (?P<at>{MINUTE}) — (?P<purpose>.*)"),
        _l("Reminder: branch visit %(at)s — %(purpose)s"),
        {},
    ),
    (
        re.compile(rf"Appointment (?P<at>{MINUTE}): (?P<who>.+?) — (?P<purpose>.*)"),
        _l("Appointment %(at)s: %(who)s — %(purpose)s"),
        {},
    ),
    (
        re.compile(rf"Appointment (?P<at>{MINUTE}) cancelled: (?P<rest>.*)"),
        _l("Appointment %(at)s cancelled: %(rest)s"),
        {},
    ),
    (
        re.compile(rf"Appointment (?P<at>{MINUTE}) missed \(customer did not come\): (?P<rest>.*)"),
        _l("Appointment %(at)s missed (customer did not come): %(rest)s"),
        {},
    ),
    (
        re.compile(r"Please accompany a key customer \(重要客户\): (?P<rest>.*)"),
        _l("Please accompany a key customer (重要客户): %(rest)s"),
        {"rest": lambda s: translate(s)},
    ),
    (
        re.compile(r"Claim #(?P<id>\d+) \((?P<measure>[^)]+)\) was (?P<what>rejected|reversed): (?P<why>.*)"),
        None,  # two messages, chosen below
        {},
    ),
    (
        re.compile(r"Claim #(?P<id>\d+) \((?P<measure>[^)]+)\) was verified"),
        _l("Claim #%(id)s (%(measure)s) was verified"),
        {},
    ),
    (
        re.compile(
            rf"New bounty \(悬赏\): (?P<title>.+) — ¥(?P<amount>[\d.,]+), deadline (?P<deadline>{DAY})"
        ),
        _l("New bounty (悬赏): %(title)s — ¥%(amount)s, deadline %(deadline)s"),
        {},
    ),
    (
        re.compile(
            r"(?P<total>\d+) assignments of (?P<code>\S+) are left unassigned in branch pools \((?P<detail>.*)\)"
        ),
        _l("%(total)s assignments of %(code)s are left unassigned in branch pools (%(detail)s)"),
        {},
    ),
]


def translate(text: str | None) -> str:
    """``text`` in the reader's language when it is one of the system's own; else as stored."""
    if not text:
        return ""
    for pattern, message, shows in PATTERNS:
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values = {k: (shows[k](v) if k in shows else v) for k, v in m.groupdict().items()}
        if message is None:  # claims rejected / reversed
            what = values.pop("what")
            if what == "rejected":
                return gettext("Claim #%(id)s (%(measure)s) was rejected: %(why)s", **values)
            return gettext("Claim #%(id)s (%(measure)s) was reversed: %(why)s", **values)
        return str(message) % values if values else str(message)
    return text
