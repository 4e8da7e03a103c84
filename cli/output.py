"""Printing query results: a rich table for people, csv or json for programs."""
import csv
import json
import sys
from datetime import date, datetime

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def emit(columns: list[str], rows: list[tuple], fmt: str = "table", title: str | None = None, file=None) -> None:
    """Print rows to FILE (standard output by default)."""
    file = file or sys.stdout
    if fmt == "csv":
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(v) for v in row] for row in rows])
    elif fmt == "json":
        print(json.dumps([{c: _plain(v) for c, v in zip(columns, row)} for row in rows], default=str), file=file)
    else:
        table = Table(title=title)
        for c in columns:
            table.add_column(c)
        for row in rows:
            table.add_row(*("" if v is None else str(_plain(v)) for v in row))
        Console(file=file, width=None if file.isatty() else 200).print(table)
