"""http-endpoint targets: their webhook headers and signing secret go to Secrets Manager, the
rest to DynamoDB, and a request that fails creates or changes nothing.

The target's record holds the secret's version id. Create writes the secret, then the record (and
deletes the secret again if the record cannot be written). Replace writes a new secret version,
then the record: if the record's write is refused (a run holds the target), the record still
names the old version, which the run keeps reading. Leaving `headers` or `signing_secret` out of
a replace keeps the stored ones.
"""

from __future__ import annotations

from chaosplane.errors import InvalidRequest
from chaosplane.faults.http import WebhookCredentials, WebhookSecrets
from chaosplane.models import Target, TargetSpec, TargetType, WebhookSpec, new_id
from chaosplane.store import Store
from chaosplane.tenancy import NoSuchEnvironment, Scope


def _stored(spec: TargetSpec, webhook: WebhookSpec, version: str, header_names: list[str]) -> TargetSpec:
    safe = webhook.model_copy(
        update={
            "headers": None,
            "signing_secret": None,
            "secret_version": version,
            "header_names": header_names,
        }
    )
    return spec.model_copy(update={"webhook": safe})


class Targets:
    """Target create / replace / delete, with the webhook secrets of http-endpoint targets."""

    def __init__(self, store: Store, secrets: WebhookSecrets | None) -> None:
        self._store = store
        self._secrets = secrets

    def _secrets_or_refuse(self) -> WebhookSecrets:
        if self._secrets is None:
            raise InvalidRequest("this deployment cannot store webhook secrets (no WEBHOOK_SECRET_PREFIX)")
        return self._secrets

    def _check_place(self, spec: TargetSpec, team: str) -> None:
        """A target names one of its team's environments, and one of that environment's Regions."""
        if spec.environment is None:
            return
        try:
            Scope(team, settings=self._store.team_settings(team)).place(spec.environment, spec.region)
        except NoSuchEnvironment as err:
            raise InvalidRequest(str(err), field=err.field) from err

    def create(self, spec: TargetSpec, *, team: str) -> Target:
        self._check_place(spec, team)
        webhook = spec.webhook
        if webhook is None:
            return self._store.create_target(spec, team=team)
        if not webhook.signing_secret:
            raise InvalidRequest(
                "an http-endpoint target needs webhook.signing_secret (32 to 512 characters)",
                field="webhook.signing_secret",
            )
        secrets = self._secrets_or_refuse()
        target_id = new_id()
        headers = dict(webhook.headers or {})
        version = secrets.create(target_id, team, WebhookCredentials(webhook.signing_secret, headers))
        try:
            return self._store.create_target(
                _stored(spec, webhook, version, sorted(headers)), team=team, target_id=target_id
            )
        except Exception:
            secrets.delete(target_id, at_once=True)
            raise

    def replace(self, target_id: str, spec: TargetSpec, *, team: str) -> Target:
        self._check_place(spec, team)
        webhook = spec.webhook
        if webhook is None:
            return self._store.replace_target(target_id, spec, team=team)
        current = self._store.get_target(target_id, team=team)  # 404 before anything is written
        if current.type is not TargetType.HTTP_ENDPOINT or current.webhook is None:
            raise InvalidRequest("a target's type cannot change; create a new target instead", field="type")
        version, names = current.webhook.secret_version, current.webhook.header_names
        if webhook.headers is not None or webhook.signing_secret is not None:
            secrets = self._secrets_or_refuse()
            old = secrets.read(target_id, version)
            headers = dict(webhook.headers) if webhook.headers is not None else dict(old.headers)
            fresh = WebhookCredentials(webhook.signing_secret or old.signing_secret, headers)
            version, names = secrets.update(target_id, fresh), sorted(headers)
        return self._store.replace_target(target_id, _stored(spec, webhook, version or "", names), team=team)

    def delete(self, target_id: str, *, team: str) -> None:
        target = self._store.get_target(target_id, team=team)
        self._store.delete_target(target_id, team=team)
        if target.type is TargetType.HTTP_ENDPOINT:
            self._secrets_or_refuse().delete(target_id)
