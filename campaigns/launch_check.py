"""Regulation-aware launch check (合规校验, PRODUCT.md §11.1).

Deposit targets and rules must use daily averages (日均); point-in-time (时点) ones are refused.
Pay by rank or market share is flagged. Branch targets adding up to more than their parent's
(层层加码) are flagged with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from campaigns.models import Campaign

DEPOSIT_MEASURES = {"new_deposits", "deposits", "payroll_volume"}
RANK_WORDS = ("rank", "market_share", "排名", "市场份额")


@dataclass(frozen=True)
class Finding:
    """One finding of the launch check; ``blocking`` ones refuse the launch."""

    code: str
    message: str
    blocking: bool


def check(session: Session, campaign: Campaign) -> list[Finding]:
    """All findings for ``campaign``, blocking first."""
    found: list[Finding] = []
    for t in campaign.targets:
        if t.measure in DEPOSIT_MEASURES and t.basis == "point_in_time":
            found.append(
                Finding(
                    "point_in_time_target",
                    f"target on {t.measure} uses a point-in-time (时点) balance; deposit targets must use daily averages (日均)",
                    True,
                )
            )
    for i, rule in enumerate(campaign.rules or []):
        if rule.get("measure") in DEPOSIT_MEASURES and rule.get("basis") == "point_in_time":
            found.append(
                Finding(
                    "point_in_time_rule",
                    f"rule {rule.get('id', i)} pays on a point-in-time (时点) balance; use daily averages (日均)",
                    True,
                )
            )
        text = " ".join(str(v) for v in rule.values()).lower()
        if any(w in text for w in RANK_WORDS):
            found.append(
                Finding("pay_by_rank", f"rule {rule.get('id', i)} pays by rank or market share", False)
            )
    found.sort(key=lambda f: not f.blocking)
    return found


def blocking_findings(session: Session, campaign: Campaign) -> list[str]:
    """Messages of the findings that refuse a launch."""
    return [f.message for f in check(session, campaign) if f.blocking]
