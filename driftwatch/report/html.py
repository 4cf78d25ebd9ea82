"""One self-contained HTML file: the report table and, per image, an SVG chart of pending security
and total updates over time, so drift can be seen accumulating and dropping at rebuilds.
No scripts, fonts or other external resources."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from ..models import Assessment, HistoryPoint
from .interface import breach_text, safe
from .table import apt_layer, count, stamp

WIDTH, HEIGHT, PAD = 640, 180, 30
STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.breach,.failed,.unscanned,.eol{background:#fde2e2}.ok{background:#e6f4ea}
svg{border:1px solid #ddd;margin:4px 0 16px 0}.sec{stroke:#c0392b;fill:#c0392b}.tot{stroke:#2c7be5;fill:#2c7be5}
polyline{fill:none;stroke-width:2}text{font-size:11px;fill:#555}
"""


def _e(text: object) -> str:
    return escape(safe(text), quote=True)


def chart(reference: str, points: Sequence[HistoryPoint]) -> str:
    """An SVG line chart: one circle per scan and series; failed scans are gaps, not zeros."""
    ok = [p for p in points if p.pending_total is not None]
    top = max([p.pending_total or 0 for p in ok] + [1])
    t0 = points[0].scanned_at.timestamp() if points else 0.0
    span = max((points[-1].scanned_at.timestamp() - t0) if points else 0.0, 1.0)

    def xy(p: HistoryPoint, value: int) -> tuple[float, float]:
        x = PAD + (p.scanned_at.timestamp() - t0) / span * (WIDTH - 2 * PAD)
        return round(x, 1), round(HEIGHT - PAD - value / top * (HEIGHT - 2 * PAD), 1)

    parts = [f'<svg class="chart" data-reference="{_e(reference)}" data-points="{len(ok)}" width="{WIDTH}" '
             f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img">',
             f"<title>{_e(reference)}: pending security (red) and total (blue) updates per scan</title>",
             f'<text x="4" y="{PAD - 10}">{top}</text><text x="4" y="{HEIGHT - PAD}">0</text>']
    for cls, attr in (("tot", "pending_total"), ("sec", "pending_security")):
        coords = [xy(p, getattr(p, attr)) for p in ok]
        if coords:
            parts.append(f'<polyline class="{cls}" points="{" ".join(f"{x},{y}" for x, y in coords)}"/>')
        parts.extend(f'<circle class="{cls}" cx="{x}" cy="{y}" r="3"/>' for x, y in coords)
    if points:
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}">{_e(stamp(points[0].scanned_at))}</text>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">'
                     f"{_e(stamp(points[-1].scanned_at))}</text>")
    parts.append("</svg>")
    return "".join(parts)


class HtmlFormat:
    """A self-contained HTML page."""

    def report(self, rows: Sequence[Assessment], history: Mapping[str, Sequence[HistoryPoint]]) -> str:
        """The table, then one chart per image."""
        head = ("<tr><th>reference</th><th>os</th><th>status</th><th>verdict</th><th>security</th><th>pending</th>"
                "<th>oldest security (d)</th><th>apt layer (d)</th><th>breaches</th><th>scanned</th></tr>")
        body = []
        for row in rows:
            s = row.summary
            status = s.status.value if s.reason is None else f"{s.status.value} ({s.reason})"
            cells = (s.reference, s.os or "-", status, row.verdict.state.value, count(s.pending_security),
                     count(s.pending_total), count(row.oldest_security_age_days, 1), apt_layer(row),
                     breach_text(row), stamp(s.scanned_at))
            tds = "".join(f"<td>{_e(c)}</td>" for c in cells)
            body.append(f'<tr class="{row.verdict.state.value}">{tds}</tr>')
        charts = [f"<h2>{_e(r.summary.reference)}</h2>"
                  f"{chart(r.summary.reference, history.get(r.summary.reference, ()))}" for r in rows]
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>driftwatch report</title>"
                f"<style>{STYLE}</style></head><body><h1>driftwatch report</h1><table>{head}{''.join(body)}</table>"
                f"{''.join(charts)}</body></html>\n")
