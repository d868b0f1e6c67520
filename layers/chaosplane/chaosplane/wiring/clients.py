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
from typing import Any

import botocore.session
from botocore.config import Config

from chaosplane.settings import Settings

RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


class Clients:
    def __init__(self, settings: Settings) -> None:
        self._region = settings.aws_region
        self._config = RETRIES.merge(Config(max_pool_connections=settings.connections))
        self._session: botocore.session.Session | None = None
        self._made: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._made:
                if self._session is None:
                    self._session = botocore.session.get_session()
                self._made[service] = self._session.create_client(
                    service, region_name=self._region, config=self._config
                )
            return self._made[service]

    def credentials(self) -> Any:
        """The function's AWS credentials (botocore's), to sign a request no client makes."""
        with self._lock:
            if self._session is None:
                self._session = botocore.session.get_session()
            return self._session.get_credentials()

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
