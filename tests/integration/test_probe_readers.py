"""The CloudWatch metric probe's reader against the embedded AWS: metric data put, then read as
the probe asks (the latest datapoint of a metric, or of a metric-math expression)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chaosplane.probes import CloudWatchMetricProbe, observe_cloudwatch_metric

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def probe(**fields: Any) -> CloudWatchMetricProbe:
    body = {"name": "errors", "source": "cloudwatch-metric", "comparison": "<", "threshold": 5, **fields}
    return CloudWatchMetricProbe.model_validate(body)


def put(cloudwatch: Any, value: float, minutes_ago: int) -> None:
    cloudwatch.put_metric_data(
        Namespace="Shop",
        MetricData=[
            {
                "MetricName": "5xx",
                "Dimensions": [{"Name": "Service", "Value": "cart"}],
                "Timestamp": NOW - timedelta(minutes=minutes_ago),
                "Value": value,
            }
        ],
    )


def test_the_latest_datapoint_is_held_to_the_threshold(cloudwatch: Any) -> None:
    cart = probe(
        namespace="Shop",
        metric_name="5xx",
        dimensions=[{"name": "Service", "value": "cart"}],
        statistic="Sum",
    )
    assert observe_cloudwatch_metric(cart, cloudwatch, NOW).detail == "no datapoint in the last three periods"
    put(cloudwatch, 2, minutes_ago=2)
    assert observe_cloudwatch_metric(cart, cloudwatch, NOW).ok
    put(cloudwatch, 9, minutes_ago=1)  # the newest point says the service is failing
    observed = observe_cloudwatch_metric(cart, cloudwatch, NOW)
    assert (observed.ok, observed.value, observed.detail) == (False, 9.0, "9 not < 5")
    other = probe(namespace="Shop", metric_name="5xx", dimensions=[{"name": "Service", "value": "web"}])
    assert not observe_cloudwatch_metric(other, cloudwatch, NOW).ok  # another dimension: no data
