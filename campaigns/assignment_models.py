"""Scratch tables of set-based distribution (assignment at launch, bulk handover).

A distribution is planned in Python per staff member (hundreds of rows at most: who may take how
many, in which round) and applied in SQL by joining these small tables to the ranked rows. Rows
are written and deleted inside one transaction; ``batch`` keeps concurrent distributions apart.
"""

from __future__ import annotations

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from config.database import Base, BigId


class DistributionBand(Base):
    """One round band of a branch's distribution: ranks ``lo < r <= hi`` go round-robin to the
    band's ``k`` members, starting at load ``level`` (so a row's owner had ``level + (r-lo-1)//k``
    open assignments when it was given). ``grp`` 'plan' rows carry per-branch constants."""

    __tablename__ = "distribution_band"
    __table_args__ = (Index("ix_distribution_band_batch", "batch", "grp", "branch_id"),)

    batch: Mapped[str] = mapped_column(
        String(60), primary_key=True, comment="which distribution, e.g. launch:12"
    )
    band_no: Mapped[int] = mapped_column(primary_key=True, comment="number of the band within the batch")
    grp: Mapped[str] = mapped_column(String(8), comment="key, gen or plan")
    branch_id: Mapped[int] = mapped_column(comment="branch the band distributes in")
    lo: Mapped[int] = mapped_column(comment="ranks above this (plan: key rows placed)")
    hi: Mapped[int] = mapped_column(comment="ranks up to this (plan: key rows overflowing)")
    k: Mapped[int] = mapped_column(comment="members in the band (plan: 1 if anyone may take work)")
    level: Mapped[int] = mapped_column(comment="open assignments of each member when the band starts")


class DistributionMember(Base):
    """A staff member at position ``pos`` (seeded draw order) of a band."""

    __tablename__ = "distribution_member"

    batch: Mapped[str] = mapped_column(String(60), primary_key=True, comment="the band's batch")
    band_no: Mapped[int] = mapped_column(primary_key=True, comment="the band's number")
    pos: Mapped[int] = mapped_column(primary_key=True, comment="0-based position in the round")
    staff_id: Mapped[int] = mapped_column(comment="who gets the rows at this position")


class DistributionPlan(Base):
    """A frozen mapping row → new owner (bulk handover), applied owner by owner."""

    __tablename__ = "distribution_plan"
    __table_args__ = (Index("ix_distribution_plan_batch", "batch", "staff_id"),)

    batch: Mapped[str] = mapped_column(String(60), primary_key=True)
    assignment_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(comment="new owner")
    load: Mapped[int] = mapped_column(comment="open assignments of the new owner when it was given")
