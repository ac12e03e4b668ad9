"""Words shown for states, triggers, kinds and roles (translated through gettext)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATES = {
    # campaign
    "draft": _l("draft"),
    "scheduled": _l("scheduled"),
    "active": _l("active"),
    "paused": _l("paused"),
    "closed": _l("closed"),
    "settled": _l("settled"),
    "cancelled": _l("cancelled"),
    # assignment
    "pool": _l("pool"),
    "assigned": _l("assigned"),
    "contacted": _l("contacted"),
    "interested": _l("interested"),
    "converted": _l("converted"),
    "declined": _l("declined"),
    "unreachable": _l("unreachable"),
    # task
    "open": _l("open"),
    "in_progress": _l("in progress"),
    "snoozed": _l("snoozed"),
    "done": _l("done"),
    "failed": _l("failed"),
    "expired": _l("expired"),
    # claims, bounties, runs, disputes
    "submitted": _l("submitted"),
    "verified": _l("verified"),
    "rejected": _l("rejected"),
    "reversed": _l("reversed"),
    "taken": _l("taken"),
    "won": _l("won"),
    "paid": _l("paid"),
    "withdrawn": _l("withdrawn"),
    "computing": _l("computing"),
    "computed": _l("computed"),
    "approved": _l("approved"),
    "locked": _l("locked"),
    "accepted": _l("accepted"),
}

TRIGGERS = {
    "launch": _l("launch"),
    "start": _l("start"),
    "pause": _l("pause"),
    "resume": _l("resume"),
    "close": _l("close"),
    "settle": _l("settle"),
    "cancel": _l("cancel"),
    "assign": _l("assign"),
    "claim": _l("claim"),
    "contact": _l("contact"),
    "interest": _l("interest"),
    "convert": _l("convert"),
    "decline": _l("decline"),
    "unreachable": _l("unreachable"),
    "release": _l("release"),
    "complete": _l("complete"),
    "fail": _l("fail"),
    "snooze": _l("snooze"),
    "wake": _l("wake"),
    "expire": _l("expire"),
}

KINDS = {
    "street_canvassing": _l("street canvassing (扫街扫楼)"),
    "payroll_accounts": _l("payroll accounts (代发工资)"),
    "online_offline": _l("online-offline combo (线上线下)"),
    "deposit_drive": _l("deposit drive (旺季存款)"),
    "retention": _l("retention (客户维护)"),
    "bounty": _l("bounty (悬赏营销)"),
}

ROLES = {
    "admin": _l("admin"),
    "director": _l("director"),
    "manager": _l("customer manager"),
    "checker": _l("checker"),
}


def state_labels() -> dict[str, str]:
    return {k: str(v) for k, v in STATES.items()}


def trigger_labels() -> dict[str, str]:
    return {k: str(v) for k, v in TRIGGERS.items()}
