"""The plain-text tables the commands print (metrics, occlusion sweeps, calibration trials)."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str) -> str:
    """A header line, a rule and one line per row; columns two spaces apart, as wide as their widest cell.

    ``align`` holds one character per column: ``<`` (left) or ``>`` (right). Cells are strings: the caller
    formats the numbers.
    """
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError(f"format_table: {len(header)} columns, align {align!r} and rows must agree")
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(cells, align, widths, strict=True)).rstrip()

    rule = "-" * sum(widths) + "-" * 2 * (len(widths) - 1)
    return "\n".join([line(header), rule, *(line(row) for row in rows)])
