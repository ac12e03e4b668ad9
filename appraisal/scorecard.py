"""Scorecard (综合考核): a weighted score of results, process, service quality and training.

Each part is a score from 0 to 100 (two decimals, ROUND_HALF_UP), computed from the month's
measures (:class:`appraisal.measures.MonthData`):

* results — mean attainment over the staff member's campaign targets, capped at 100 % (no target: 0);
* process — half task completion (done / (done + overdue); no tasks: 100) and half follow-ups
  logged against the expected number per month (``follow_up_norm``, default 20), capped at 100 %
  (the seed warns against 重结果、轻过程);
* service — 100 minus ``complaint_penalty`` (default 20) per verified complaint, not below 0,
  averaged with the mean satisfaction (1–5 → 20–100) when customers rated the handling;
* training — attended / (attended + missed) mandatory sessions (none held: 100).

The score is Σ weight × part / Σ weights. Ranks: 1 is best, within the branch and the union;
equal scores share a rank (ties listed by staff_no).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.measures import MonthData
from appraisal.models import ScorecardWeights
from appraisal.money import MONEY_CONTEXT, to_fen

DEFAULT_WEIGHTS: dict[str, Any] = {
    "results": 40,
    "process": 30,
    "service": 20,
    "training": 10,
    "follow_up_norm": 20,
    "complaint_penalty": 20,
}
PARTS = ("results", "process", "service", "training")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Score:
    staff_id: int
    staff_no: str
    name: str
    branch_code: str
    results: Decimal
    process: Decimal
    service: Decimal
    training: Decimal
    score: Decimal
    rank_branch: int = 0
    rank_union: int = 0


def current_weights(session: Session) -> dict[str, Any]:
    row = session.scalars(select(ScorecardWeights).order_by(ScorecardWeights.id.desc()).limit(1)).first()
    return {**DEFAULT_WEIGHTS, **(row.weights if row else {})}


def validate_weights(raw: dict[str, Any]) -> dict[str, Any]:
    """Weights are whole numbers ≥ 0 that do not all vanish; norms are positive. ValueError names the field."""
    out: dict[str, Any] = {}
    for key in (*PARTS, "follow_up_norm", "complaint_penalty"):
        value = raw.get(key, DEFAULT_WEIGHTS[key])
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{key}: a whole number is expected, found {value!r}") from None
        if number < 0 or (key == "follow_up_norm" and number == 0):
            raise ValueError(
                f"{key}: must be {'above' if key == 'follow_up_norm' else 'at least'} 0, found {number}"
            )
        out[key] = number
    if sum(out[p] for p in PARTS) == 0:
        raise ValueError("weights: at least one part needs a weight above 0")
    return out


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    with localcontext(MONEY_CONTEXT):
        return min(numerator / denominator, Decimal(1)) if denominator else Decimal(0)


def score_month(data: MonthData, weights: dict[str, Any] | None = None) -> dict[int, Score]:
    """Every staff member's scorecard for the month of ``data``, ranked (pure; no database)."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    norm = Decimal(int(w["follow_up_norm"]))
    penalty = Decimal(int(w["complaint_penalty"]))
    total_weight = Decimal(sum(int(w[p]) for p in PARTS))
    scores: dict[int, Score] = {}
    with localcontext(MONEY_CONTEXT):
        for sid, staff in data.staff.items():
            if not staff.is_manager or staff.status == "departed":
                continue
            attainments: list[Decimal] = []
            done = overdue = follow_ups = Decimal(0)
            for c in data.campaigns:
                for measure in data.targets.get(c.id, {}):
                    if c.all_branches or staff.branch_id in c.branch_ids or (sid, c.id) in data.measures:
                        a = data.attainment(sid, c, measure)
                        if a is not None:
                            attainments.append(min(a, Decimal(1)))
            for (s, _cid), values in data.measures.items():
                if s == sid:
                    done += values.get("tasks_done", 0)
                    overdue += values.get("tasks_overdue", 0)
                    follow_ups += values.get("follow_ups_logged", 0)
            results = (
                to_fen(HUNDRED * sum(attainments, Decimal(0)) / len(attainments))
                if attainments
                else Decimal("0.00")
            )
            completion = _ratio(done, done + overdue) if done + overdue else Decimal(1)
            process = to_fen(HUNDRED * (completion + _ratio(follow_ups, norm)) / 2)
            complaints = data.staff_measures.get(sid, {}).get("complaints", Decimal(0))
            service = max(HUNDRED - penalty * complaints, Decimal(0))
            if sid in data.satisfaction:
                service = (service + data.satisfaction[sid] * 20) / 2
            service = to_fen(service)
            present, absent = data.attendance.get(sid, (0, 0))
            training = (
                to_fen(HUNDRED * _ratio(Decimal(present), Decimal(present + absent)))
                if present + absent
                else Decimal("100.00")
            )
            parts = {"results": results, "process": process, "service": service, "training": training}
            score = to_fen(sum((Decimal(int(w[p])) * parts[p] for p in PARTS), Decimal(0)) / total_weight)
            scores[sid] = Score(sid, staff.staff_no, staff.name, staff.branch_code, score=score, **parts)
    return _ranked(scores)


def _ranked(scores: dict[int, Score]) -> dict[int, Score]:
    from dataclasses import replace

    def ranks(items: list[Score]) -> dict[int, int]:
        ordered = sorted(items, key=lambda s: (-s.score, s.staff_no))
        out: dict[int, int] = {}
        for i, s in enumerate(ordered):
            out[s.staff_id] = out[ordered[i - 1].staff_id] if i and ordered[i - 1].score == s.score else i + 1
        return out

    union = ranks(list(scores.values()))
    branch: dict[int, int] = {}
    for code in {s.branch_code for s in scores.values()}:
        branch.update(ranks([s for s in scores.values() if s.branch_code == code]))
    return {
        sid: replace(s, rank_branch=branch[sid], rank_union=union[sid])
        for sid, s in sorted(scores.items(), key=lambda kv: (-kv[1].score, kv[1].staff_no))
    }
