"""Output formats: the report in five formats; `show` and `history` in table or JSON."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol, assert_never

from ..models import HistoryPoint, ScanResult
from .csv import CsvFormat
from .html import HtmlFormat
from .interface import Formatter
from .json import JsonFormat
from .markdown import MarkdownFormat
from .table import TableFormat

__all__ = ["DetailFormat", "DetailFormatter", "Formatter", "ReportFormat"]


class DetailFormatter(Protocol):
    """`show` and `history` output."""

    def updates(self, scan_id: int, scan: ScanResult) -> str:
        """The pending updates of one scan."""

    def history(self, reference: str, points: Sequence[HistoryPoint]) -> str:
        """Every scan of one reference."""


class ReportFormat(str, enum.Enum):
    """``report --format``."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    HTML = "html"

    def to_formatter(self) -> Formatter:
        """The formatter for this choice."""
        if self is ReportFormat.TABLE:
            return TableFormat()
        if self is ReportFormat.JSON:
            return JsonFormat()
        if self is ReportFormat.CSV:
            return CsvFormat()
        if self is ReportFormat.MARKDOWN:
            return MarkdownFormat()
        if self is ReportFormat.HTML:
            return HtmlFormat()
        assert_never(self)


class DetailFormat(str, enum.Enum):
    """``show --format`` and ``history --format``."""

    TABLE = "table"
    JSON = "json"

    def to_formatter(self) -> DetailFormatter:
        """The formatter for this choice."""
        if self is DetailFormat.TABLE:
            return TableFormat()
        if self is DetailFormat.JSON:
            return JsonFormat()
        assert_never(self)


