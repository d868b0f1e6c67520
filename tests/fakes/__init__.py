"""In-memory implementations of every port of the run lifecycle (chaosplane.ports), for unit tests.

They keep the invariants the DynamoDB store keeps with conditional writes (one run per experiment
and per target, the team's concurrency limit, the emergency stop, a journal entry keeps its first
prior state, a final run stays final), and hand out copies, as a database does: a caller that
changes what it read changes nothing until it writes.
"""

from tests.fakes.clock import FakeClock
from tests.fakes.families import FakeInstances
from tests.fakes.store import InMemoryStore
from tests.fakes.telemetry import RecordingTelemetry
from tests.fakes.tracing import RecordingTracing
from tests.fakes.workflow import FakeWorkflow

__all__ = [
    "FakeClock",
    "FakeInstances",
    "FakeWorkflow",
    "InMemoryStore",
    "RecordingTelemetry",
    "RecordingTracing",
]
