"""Output formats for `report` and `show`."""

from __future__ import annotations

import enum
from typing import assert_never

from .interface import Formatter
from .json import JsonFormat
from .table import TableFormat

__all__ = ["Formatter", "OutputFormat", "JsonFormat", "TableFormat"]


class OutputFormat(str, enum.Enum):
    """The ``--format`` choices."""

    TABLE = "table"
    JSON = "json"

    def to_formatter(self) -> Formatter:
        """The formatter for this choice."""
        if self is OutputFormat.TABLE:
            return TableFormat()
        if self is OutputFormat.JSON:
            return JsonFormat()
        assert_never(self)
