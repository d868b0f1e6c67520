"""The AWS clients of one function: each made on its first use, then shared by every caller.

Making a client costs tens of milliseconds (botocore loads the service's model; EC2's alone is
megabytes of JSON), so a function makes only the clients its events use, and makes each once:
the guard, which halts runs, makes two, where building every client up front made thirteen.
Making clients is not thread-safe (using one is), hence the lock: a run changes resources from
several threads at once.

botocore rather than boto3: boto3's sessions add nothing these clients use (their extras are for
S3 and the resource API) and importing boto3 costs about a tenth of a second more (s3transfer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, DeferredRefreshableCredentials

from chaosplane.settings import Settings

RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


ASSUMED_SECONDS = 3600  # botocore refreshes assumed credentials 15 minutes before they expire


class Clients:
    def __init__(
        self,
        settings: Settings,
        *,
        region: str | None = None,
        session: Callable[[], botocore.session.Session] = botocore.session.get_session,
    ) -> None:
        self._settings = settings
        self._region = region or settings.aws_region
        self._config = RETRIES.merge(Config(max_pool_connections=settings.connections))
        self._new_session = session
        self._session: botocore.session.Session | None = None
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._made:
                self._made[service] = self._ensure_session().create_client(
                    service, region_name=self._region, config=self._config
                )
            return self._made[service]

    def _ensure_session(self) -> botocore.session.Session:
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def credentials(self) -> Any:
        """The function's AWS credentials (botocore's), to sign a request no client makes."""
        with self._lock:
            return self._ensure_session().get_credentials()

    def assuming(
        self,
        role_arn: str,
        *,
        session_name: str,
        tags: Mapping[str, str],
        external_id: str | None = None,
        region: str | None = None,
    ) -> Clients:
        """Clients that act as `role_arn`, assumed by these clients with `tags` as session tags
        (what the role's policy conditions on) and `external_id`, in `region` (these clients' by
        default). botocore assumes the role on the first call and again shortly before the
        credentials expire: the same clients serve any number of runs."""
        sts = self.sts

        def assume() -> dict[str, str]:
            asked: dict[str, Any] = {
                "RoleArn": role_arn,
                "RoleSessionName": session_name[:64],
                "DurationSeconds": ASSUMED_SECONDS,
                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
            }
            if external_id:
                asked["ExternalId"] = external_id
            found = sts.assume_role(**asked)["Credentials"]
            return {
                "access_key": found["AccessKeyId"],
                "secret_key": found["SecretAccessKey"],
                "token": found["SessionToken"],
                "expiry_time": found["Expiration"].isoformat(),
            }

        class AssumedRole(CredentialProvider):  # type: ignore[misc]  # botocore's extension point
            METHOD = "chaosplane-assume-role"

            def load(self) -> DeferredRefreshableCredentials:
                return DeferredRefreshableCredentials(refresh_using=assume, method=self.METHOD)

        def session() -> botocore.session.Session:
            made = botocore.session.Session()
            made.get_component("credential_provider").insert_before("env", AssumedRole())
            return made

        return Clients(self._settings, region=region or self._region, session=session)

    def lazy(self, service: str) -> Any:
        """The client, to be made on first use: see LazyClient."""
        return LazyClient(self, service)

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def stepfunctions(self) -> Any:
        return self.client("stepfunctions")

    @property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @property
    def eks(self) -> Any:
        return self.client("eks")

    @property
    def sts(self) -> Any:
        return self.client("sts")

    @property
    def events(self) -> Any:
        return self.client("events")

    @property
    def scheduler(self) -> Any:
        return self.client("scheduler")

    @property
    def rds(self) -> Any:
        return self.client("rds")

    @property
    def ecs(self) -> Any:
        return self.client("ecs")

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    @property
    def tagging(self) -> Any:
        return self.client("resourcegroupstaggingapi")

    @property
    def ssm(self) -> Any:
        return self.client("ssm")

    @property
    def secretsmanager(self) -> Any:
        return self.client("secretsmanager")

    @property
    def sns(self) -> Any:
        return self.client("sns")


class LazyClient:
    """Stands for one of `Clients`' clients, which is made when an attribute is first asked for.

    For the collaborators that take a client when they are built, at cold start (the webhook
    secrets, the notification vault, the Scheduler gateway): their client is made by the first
    request that uses it, not by every cold start.
    """

    def __init__(self, clients: Clients, service: str) -> None:
        self._clients = clients
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clients.client(self._service), name)
