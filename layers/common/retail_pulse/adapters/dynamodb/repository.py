"""The jobs table as the logic sees it: one repository assembled from one class per concern."""

from __future__ import annotations

from typing import Any

from retail_pulse.adapters.dynamodb.counting import ResultCounting
from retail_pulse.adapters.dynamodb.exports import ExportItems
from retail_pulse.adapters.dynamodb.fanout import FanOutItems
from retail_pulse.adapters.dynamodb.job_lists import JobLists
from retail_pulse.adapters.dynamodb.jobs import JobItems
from retail_pulse.adapters.dynamodb.notices import NoticeItems
from retail_pulse.adapters.dynamodb.parking import ParkedImages
from retail_pulse.adapters.dynamodb.results import ResultItems
from retail_pulse.adapters.dynamodb.slots import InFlightSlots


class DynamoJobRepository(
    JobItems,
    JobLists,
    ResultItems,
    NoticeItems,
    ResultCounting,
    ParkedImages,
    FanOutItems,
    ExportItems,
    InFlightSlots,
):
    """Jobs, results, notices, counting, parked images, fan-out, exports and images in flight on one table and one
    client (see each base's module)."""

    def __init__(self, table_name: str, client: Any | None = None, *, result_writers: int = 10) -> None:
        super().__init__(table_name, client)
        self.writers = result_writers
