"""Benchmark results as Markdown tables, ready for the README."""


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def print_table(columns, rows, title: str | None = None) -> None:
    if title:
        print(f"\n{title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
