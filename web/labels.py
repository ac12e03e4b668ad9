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
    # appointments
    "booked": _l("booked"),
    "no_show": _l("missed (no-show)"),
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
    "attend": _l("attend"),
    "miss": _l("mark as missed"),
}


class _KindLabels:
    """Kind labels come from the kind registry (campaigns/kinds.py): a new kind is one entry there."""

    def get(self, code: str, default: str | None = None) -> str:
        from flask_babel import get_locale

        from campaigns.kinds import KINDS as REGISTRY

        spec = REGISTRY.get(code)
        if spec is None:
            return default if default is not None else code
        return spec.label_en if str(get_locale()) == "en" else f"{spec.label_zh}"


KINDS = _KindLabels()

#: Codes of other vocabularies shown on pages (tiers, alert types, customer types).
VALUES = {
    "vip": _l("VIP"),
    "high": _l("high"),
    "mass": _l("mass"),
    "asset_drop": _l("asset drop"),
    "unstable_funds": _l("unstable funds"),
    "risk_change": _l("risk status change"),
    "individual": _l("individual"),
    "business": _l("business"),
    "institution": _l("institution"),
    # machines
    "campaign": _l("Campaign"),
    "assignment": _l("Assignment"),
    "task": _l("Task"),
    "claim": _l("Result claim"),
    "bounty": _l("Bounty"),
    "incentive_run": _l("Incentive run"),
    "dispute": _l("Dispute"),
    "appointment": _l("Appointment"),
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
