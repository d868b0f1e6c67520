"""Domain errors. The API turns them into HTTP in one place; Step Functions matches on their names."""

from __future__ import annotations

from enum import StrEnum


class ChaosplaneError(Exception):
    """Base of every error the domain raises on purpose."""


class NotFound(ChaosplaneError):
    def __init__(self, kind: str, item_id: str) -> None:
        super().__init__(f"{kind} {item_id!r} not found")
        self.kind = kind
        self.item_id = item_id


class Conflict(ChaosplaneError):
    """The request is valid but the current state forbids it (e.g. editing a running experiment)."""


class RunExists(Conflict):
    """A run with this id is already recorded (a retried start of the same execution)."""


class InvalidRequest(ChaosplaneError):
    """The request is well-formed but refers to something unusable (e.g. a target of the wrong type).

    `field` (a dotted path in the body, e.g. "webhook.signing_secret") names the part at fault, so
    that the API reports it as a request validation error does and a form can show it beside it.
    """

    def __init__(self, message: str, *, field: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.problems = problems or []
        """Each problem of a document checked whole (an FIS template), as `path: what is wrong`."""


class TransientError(ChaosplaneError):
    """Worth retrying as is: throttling, a resource still changing state. Step Functions retries it."""


class Halted(ChaosplaneError):
    """The run was asked to stop. Step Functions catches it by this name and goes to rollback."""


class InjectionFailed(ChaosplaneError):
    """A fault could not be injected; the run fails (never a quiet success) after rollback."""


class NothingToHit(ChaosplaneError):
    """The target matched no resource in a state the fault can act on."""


class NotEligible(ChaosplaneError):
    """A planned resource changed state before injection (someone else acted): leave it alone."""


class RollbackIncomplete(ChaosplaneError):
    """Some journaled changes could not be undone; the run keeps its locks until they are."""


class PolicyRefused(ChaosplaneError):
    """The plan is over the team's safety policy; it is refused, never trimmed."""


class PreflightFailed(ChaosplaneError):
    """A stop condition is in ALARM (or without data, when the policy refuses that) at the start."""


class AssertionFailed(ChaosplaneError):
    """An assert-alarm-state action found an alarm in a state it does not allow: the run fails."""


class ErrorName(StrEnum):
    """The error names that travel through Step Functions (Retry, Catch, the state's `error`).

    A step raises one of the errors above and Lambda reports its class name; the halter sends
    `Halted` as a task failure; recovery reports `WorkflowEnded`. Defined once: the state machine's
    ErrorEquals, the halter and Finalize all use these (a unit test holds the ASL to them).
    """

    HALTED = Halted.__name__
    TRANSIENT = TransientError.__name__
    PREFLIGHT_FAILED = PreflightFailed.__name__
    POLICY_REFUSED = PolicyRefused.__name__
    NOTHING_TO_HIT = NothingToHit.__name__
    ROLLBACK_INCOMPLETE = RollbackIncomplete.__name__
    ASSERTION_FAILED = AssertionFailed.__name__
    WORKFLOW_ENDED = "WorkflowEnded"  # not raised: recovery's name for an execution that died
