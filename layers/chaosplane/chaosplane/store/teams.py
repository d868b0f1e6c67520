"""A team's record: its safety policy, its emergency stop and its notification settings."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chaosplane.errors import Conflict
from chaosplane.models import Lever, new_id
from chaosplane.safety import SafetyPolicy
from chaosplane.store.base import ALL_TEAMS, StoreBase, is_condition_failure
from chaosplane.tenancy import TeamSettings

if TYPE_CHECKING:  # imported where used: notify brings the HTTP sender, which the guard never needs
    from chaosplane.notify import TeamNotifications

NOTIFICATIONS_HOLD = timedelta(seconds=60)  # longer than any change of channels takes (API timeout: 29 s)


class Teams(StoreBase):
    def policy(self, team: str) -> SafetyPolicy:
        return self._policy(self._get_or_none(self._teams, team))

    @staticmethod
    def _policy(record: Any | None) -> SafetyPolicy:
        """The policy a team record holds; the defaults for a team with no record yet."""
        return SafetyPolicy.model_validate((record.policy if record is not None else None) or {})

    def set_policy(self, team: str, policy: SafetyPolicy) -> SafetyPolicy:
        self._teams(team=team).update(actions=[self._teams.policy.set(policy.model_dump(mode="json"))])
        return policy

    def team_settings(self, team: str) -> TeamSettings:
        record = self._get_or_none(self._teams, team)
        return TeamSettings.model_validate((record.settings if record is not None else None) or {})

    def set_team_settings(self, team: str, settings: TeamSettings) -> TeamSettings:
        """Store a team's settings; its ExternalId is the platform's, made once and kept."""
        kept = self.team_settings(team).external_id or secrets.token_urlsafe(24)
        settings = settings.model_copy(update={"external_id": kept})
        self._teams(team=team).update(actions=[self._teams.settings.set(settings.model_dump(mode="json"))])
        return settings

    def notifications(self, team: str) -> TeamNotifications:
        from chaosplane.notify import TeamNotifications

        try:
            record = self._teams.get(team, consistent_read=True)
        except DoesNotExist:
            return TeamNotifications()
        return TeamNotifications.model_validate(record.notifications or {})

    def set_notifications(self, team: str, settings: TeamNotifications) -> None:
        t = self._teams
        t(team=team).update(actions=[t.notifications.set(settings.model_dump(mode="json"))])

    @contextmanager
    def changing_notifications(self, team: str) -> Iterator[None]:
        """Hold the team's notifications while changing them; a concurrent change is refused.

        Two admins changing different channels at once would otherwise each write back what they
        read, and one change would be lost without a word. The hold lapses after
        NOTIFICATIONS_HOLD, so a change that crashed half-way never locks the team out for long.
        """
        t, now, token = self._teams, self._clock(), new_id()
        try:
            t(team=team).update(
                actions=[
                    t.notifications_changed_by.set(token),
                    t.notifications_change_until.set(now + NOTIFICATIONS_HOLD),
                ],
                condition=t.notifications_change_until.does_not_exist()
                | (t.notifications_change_until < now),
            )
        except UpdateError as err:
            if is_condition_failure(err):
                raise Conflict(
                    f"another change to team {team}'s notifications is in progress; try again in a moment"
                ) from err
            raise
        try:
            yield
        finally:
            try:
                t(team=team).update(
                    actions=[t.notifications_changed_by.remove(), t.notifications_change_until.remove()],
                    condition=t.notifications_changed_by == token,
                )
            except UpdateError as err:
                if not is_condition_failure(err):  # else it lapsed and someone else holds it now
                    raise

    def policy_and_lever(self, team: str) -> tuple[SafetyPolicy, Lever | None]:
        """The team's policy and the emergency stop in force for it, in one read of both records."""
        records = {r.team: r for r in self._teams.batch_get([team, ALL_TEAMS], consistent_read=True)}
        mine = records.get(team)
        policy = self._policy(mine)
        for scope in (ALL_TEAMS, team):
            record = records.get(scope)
            if record is not None and record.halted_at is not None:
                return policy, Lever(team=scope, engaged_by=record.halted_by, engaged_at=record.halted_at)
        return policy, None

    def lever(self, team: str) -> Lever | None:
        """The emergency stop in force for `team`: its own, or the platform-wide one."""
        for scope in (ALL_TEAMS, team):
            try:
                record = self._teams.get(scope, consistent_read=True)
            except DoesNotExist:
                continue
            if record.halted_at is not None:
                return Lever(team=scope, engaged_by=record.halted_by, engaged_at=record.halted_at)
        return None

    def engage_lever(self, scope: str, principal: str) -> Lever:
        now = self._clock()
        t = self._teams
        try:
            t(team=scope).update(
                actions=[t.halted_by.set(principal), t.halted_at.set(now)],
                condition=t.halted_at.does_not_exist(),
            )
        except UpdateError as err:
            if not is_condition_failure(err):
                raise
        record = self._teams.get(scope, consistent_read=True)
        return Lever(team=scope, engaged_by=record.halted_by, engaged_at=record.halted_at)

    def release_lever(self, scope: str) -> None:
        t = self._teams
        t(team=scope).update(actions=[t.halted_by.remove(), t.halted_at.remove()])
