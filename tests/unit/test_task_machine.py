"""The task machine's table, exhaustively: every (state, trigger) pair is allowed or refused as §5 says."""

from __future__ import annotations

import itertools

import pytest

from tasks.machine import task_workflow
from tasks.models import TaskState

T = TaskState
TRIGGERS = ("start", "complete", "fail", "snooze", "wake", "cancel", "expire")
ALLOWED = {
    (T.open, "start"): T.in_progress,
    (T.in_progress, "complete"): T.done,
    (T.in_progress, "fail"): T.failed,
    (T.open, "snooze"): T.snoozed,
    (T.snoozed, "wake"): T.open,
    (T.open, "cancel"): T.cancelled,
    (T.in_progress, "cancel"): T.cancelled,
    (T.snoozed, "cancel"): T.cancelled,
    (T.open, "expire"): T.expired,
    (T.in_progress, "expire"): T.expired,
    (T.snoozed, "expire"): T.expired,
}


@pytest.mark.parametrize("state,trigger", list(itertools.product(list(T), TRIGGERS)))
def test_every_pair(state, trigger):
    t = task_workflow.table.get((state, trigger))
    if (state, trigger) in ALLOWED:
        assert t is not None and t.dest == ALLOWED[(state, trigger)]
    else:
        assert t is None


def test_no_other_triggers_and_finished_states_are_final():
    assert {trig for (_, trig) in task_workflow.table} == set(TRIGGERS)
    for s in (T.done, T.failed, T.cancelled, T.expired):
        assert task_workflow.triggers_from(s) == []


def test_fail_needs_a_reason_and_contact_guards_are_declared():
    assert task_workflow.table[(T.in_progress, "fail")].reason_required
    assert {g.name for g in task_workflow.table[(T.open, "start")].guards} == {
        "may_contact",
        "in_contact_window",
    }
    assert {g.name for g in task_workflow.table[(T.in_progress, "complete")].guards} == {"has_follow_up"}
