"""Query parameters shared by every list endpoint."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from chaosplane.store import MAX_PAGE

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
NextToken = Annotated[str | None, Query(max_length=2048, description="next_token of the previous page")]
