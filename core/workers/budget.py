"""``--budget`` with workers: the parent reserves each row's expected cost before the row
goes to a worker, and settles it with what the row cost (its answer says).

In one process the budget is reserved per attempt. With workers it is reserved
per row, in the parent (the one budget of the run), at the same expected cost
an attempt reserves; a row's retries are paid out of its settlement. A run can
therefore pass its budget by at most what the retries of the rows in flight
cost, never by whole rows: no row is sent once the budget (less what is
reserved for the rows in flight) cannot pay for it.
"""

from __future__ import annotations

from collections.abc import Callable

from core.dataset import Record
from core.extract import ExtractionFailed
from core.failures import Failure
from core.ratelimit import Budget
from core.results import ErrorKind


class RowBudget:
    def __init__(self, budget: Budget, expected_usd: Callable[[Record], float]) -> None:
        self.budget = budget
        self._expected = expected_usd

    def reserve(self, record: Record) -> float:
        """The amount reserved for this row; ExtractionFailed (a budget stop) if none is left."""
        amount = self._expected(record)
        if not self.budget.reserve(amount):
            failure = Failure(
                ErrorKind.BUDGET,
                f"budget of ${self.budget.limit_usd:.4f} reached "
                f"(spent ${self.budget.spent_usd:.4f}); not sent",
            )
            raise ExtractionFailed(failure, 0, 0, 0)
        return amount

    def settle(self, reserved: float, cost_usd: float) -> None:
        self.budget.settle(reserved, cost_usd)
