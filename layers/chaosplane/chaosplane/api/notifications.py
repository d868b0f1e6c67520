"""/notifications: the caller's team's channels (Slack, PagerDuty, email) and which statuses notify.

Reading is for viewers (secrets are never shown, only masked hints); changing is for admins, since a
webhook or routing key decides where a team's incidents go.
"""

from collections.abc import Callable

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from chaosplane.auth import Caller
from chaosplane.notifications import (
    EmailRequest,
    Notifications,
    NotificationsView,
    NotifyOnRequest,
    PagerDutyRequest,
    SlackRequest,
)


def router(notifications: Callable[[], Notifications], caller: Callable[[], Caller]) -> APIGatewayRouter:
    r = APIGatewayRouter()

    @r.get("/notifications", tags=["notifications"])
    def get_notifications() -> NotificationsView:
        return notifications().view(caller().team)

    @r.put("/notifications", tags=["notifications"])
    def put_notify_on(request: NotifyOnRequest) -> NotificationsView:
        return notifications().set_notify_on(caller().team, request)

    @r.put("/notifications/slack", tags=["notifications"])
    def put_slack(request: SlackRequest) -> NotificationsView:
        return notifications().set_slack(caller().team, request)

    @r.delete("/notifications/slack", tags=["notifications"], status_code=204)
    def delete_slack() -> tuple[None, int]:
        notifications().remove_slack(caller().team)
        return None, 204

    @r.put("/notifications/pagerduty", tags=["notifications"])
    def put_pagerduty(request: PagerDutyRequest) -> NotificationsView:
        return notifications().set_pagerduty(caller().team, request)

    @r.delete("/notifications/pagerduty", tags=["notifications"], status_code=204)
    def delete_pagerduty() -> tuple[None, int]:
        notifications().remove_pagerduty(caller().team)
        return None, 204

    @r.put("/notifications/email", tags=["notifications"])
    def put_email(request: EmailRequest) -> NotificationsView:
        return notifications().set_email(caller().team, request)

    @r.delete("/notifications/email", tags=["notifications"], status_code=204)
    def delete_email() -> tuple[None, int]:
        notifications().remove_email(caller().team)
        return None, 204

    return r
