"""Configuration, read once from the environment at cold start and validated.

A missing variable fails at start-up with its name, never deep inside a request.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    targets_table: str
    experiments_table: str
    results_table: str
    journal_table: str
    audit_table: str
    teams_table: str
    aws_region: str = Field(validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"))
    # Only the API function starts runs; the executor never needs it (and must not: that would be a
    # dependency cycle in template.yaml, since the state machine invokes the executor).
    state_machine_arn: str | None = None
    max_body_bytes: int = 64 * 1024
    # Admins of this team may engage the emergency stop for every team.
    platform_team: str = "platform"
    # http-endpoint targets: each one's webhook headers and signing secret are the secret
    # <prefix><target id> (the executor may read, and the API write, only under this prefix).
    webhook_secret_prefix: str


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    return Settings()  # type: ignore[call-arg]  # values come from the environment
