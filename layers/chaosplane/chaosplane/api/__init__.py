"""The REST API: one Router per resource, errors mapped to HTTP in one place."""

from chaosplane.api.app import build_app

__all__ = ["build_app"]
