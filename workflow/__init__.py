"""The workflow engine: declarative state machines on `transitions`, history, bulk transitions.

Public surface: :class:`Workflow` (a machine declared once per model class), :func:`fire`,
:func:`bulk_fire`, :class:`TransitionRecord`, and the errors in :mod:`workflow.errors`.
"""

from workflow.engine import Guard, Transition, Workflow, available_triggers, bulk_fire, fire
from workflow.errors import ConflictError, GuardRefused, InvalidTransition, WorkflowError
from workflow.models import TransitionRecord

__all__ = [
    "ConflictError",
    "Guard",
    "GuardRefused",
    "InvalidTransition",
    "Transition",
    "TransitionRecord",
    "Workflow",
    "WorkflowError",
    "available_triggers",
    "bulk_fire",
    "fire",
]
