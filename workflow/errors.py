"""Domain errors of the workflow engine. Web and API answer them with HTTP 409."""

from __future__ import annotations


class WorkflowError(Exception):
    """Base of every error a transition can raise."""

    http_status = 409

    def to_dict(self) -> dict[str, object]:
        return {"error": type(self).__name__, "message": str(self)}


class InvalidTransition(WorkflowError):
    """The trigger is not allowed from the current state."""

    def __init__(self, entity: str, entity_id: object, state: str, trigger: str, allowed: list[str]) -> None:
        self.entity, self.entity_id, self.state, self.trigger, self.allowed = (
            entity,
            entity_id,
            state,
            trigger,
            allowed,
        )
        allowed_text = ", ".join(allowed) if allowed else "none (final state)"
        super().__init__(
            f"Cannot {trigger} {entity} {entity_id}: it is {state}; allowed from {state}: {allowed_text}"
        )

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "state": self.state, "trigger": self.trigger, "allowed": self.allowed}


class GuardRefused(WorkflowError):
    """A guard of the transition refused it; ``reasons`` say why, in words a director reads."""

    def __init__(self, entity: str, entity_id: object, trigger: str, reasons: list[str]) -> None:
        self.entity, self.entity_id, self.trigger, self.reasons = entity, entity_id, trigger, reasons
        super().__init__(f"Cannot {trigger} {entity} {entity_id}: " + "; ".join(reasons))

    def to_dict(self) -> dict[str, object]:
        return {**super().to_dict(), "trigger": self.trigger, "reasons": self.reasons}


class ConflictError(WorkflowError):
    """Someone else changed the record first; reload and try again. Nothing was saved."""

    def __init__(self, entity: str, entity_id: object, detail: str = "") -> None:
        self.entity, self.entity_id = entity, entity_id
        msg = f"{entity} {entity_id} was changed by someone else at the same time; reload and try again"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class ReasonRequired(WorkflowError):
    """The transition needs a reason and none was given."""

    http_status = 422

    def __init__(self, entity: str, trigger: str) -> None:
        super().__init__(f"A reason is required to {trigger} a {entity}")
