"""Drawing a report Result with matplotlib: one function per kind of analysis."""
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dissect.ledger.report import Result  # noqa: E402


def _groups(result: Result, *names):
    """Rows grouped by the values of the named columns (an empty name groups nothing)."""
    idx = {c: i for i, c in enumerate(result.columns)}
    groups = defaultdict(list)
    for row in result.rows:
        groups[tuple(row[idx[n]] if n else None for n in names)].append(dict(zip(result.columns, row)))
    return groups


def _label(value) -> str:
    if value is True:
        return "clean"
    if value is False:
        return "noisy"
    return str(value)


def draw_line(result: Result, ax):
    a = result.analysis
    std = a.y.replace("_mean", "_std")
    hues = [a.hue, "setting"] if "setting" in result.columns else [a.hue]
    for hue, rows in sorted(_groups(result, *hues).items(), key=lambda kv: str(kv[0])):
        xs, ys = [r[a.x] for r in rows], [r[a.y] for r in rows]
        label = " ".join(_label(h) for h in hue if h not in ("", None))
        if std != a.y and std in rows[0]:
            style = ":" if label.startswith("coreset") else "-"   # chosen once, before training: dotted, as in the paper
            ax.errorbar(xs, ys, yerr=[r[std] for r in rows], marker="o", capsize=3, label=label, linestyle=style)
        else:
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=label)
    first = dict(zip(result.columns, result.rows[0]))
    ax.set_xlabel(first.get("x_axis", a.x))
    ax.set_ylabel(result.params.get("metric", a.y))
    ax.legend()


def draw_hist(result: Result, fig):
    a = result.analysis
    facets = sorted({k[0] for k in _groups(result, a.facet)}, key=lambda v: (str(type(v)), v))
    axes = fig.subplots(1, len(facets), squeeze=False, sharey=True)[0]
    for ax, facet in zip(axes, facets):
        for (f, hue), rows in sorted(_groups(result, a.facet, a.hue).items(), key=lambda kv: str(kv[0])):
            if f != facet:
                continue
            total = sum(r["n"] for r in rows)
            ax.bar([r["bin"] + 1 for r in rows], [r["n"] / total for r in rows], width=2, alpha=0.5,
                   label=_label(hue))
            if "oracle_median" in rows[0]:
                ax.axvline(rows[0]["oracle_median"], color="k", linestyle="--", linewidth=1)
        ax.set_title(f"{a.facet} {facet}" if a.facet else "")
        ax.set_xlabel("CLIPScore")
        ax.legend()
    axes[0].set_ylabel("fraction")


def draw_bar(result: Result, ax):
    metrics = [c for c in result.columns if c.startswith(("tp_accuracy", "auroc"))]
    width = 0.8 / len(metrics)
    names = [dict(zip(result.columns, r))["run"] for r in result.rows]
    for i, metric in enumerate(metrics):
        values = [dict(zip(result.columns, r))[metric] for r in result.rows]
        xs = [j + i * width for j in range(len(names))]
        ax.bar(xs, [0 if v is None else v for v in values], width=width, label=metric)
        for x, v in zip(xs, values):
            if v is None:  # nothing to rank or pick: say so rather than draw a zero
                ax.text(x, 0.02, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(names))], names, rotation=20)
    ax.axhline(0.5, color="k", linewidth=0.5)
    ax.set_ylim(0, 1)
    ax.legend()


def draw_table(result: Result, ax):
    ax.axis("off")
    cells = [[f"{v:.2f}" if isinstance(v, float) else str(v) for v in row] for row in result.rows]
    table = ax.table(cellText=cells, colLabels=result.columns, loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.2)


def draw(result: Result, path: Path) -> Path:
    a = result.analysis
    rows_high = max(4, 0.22 * len(result.rows)) if a.kind == "table" else 4.5
    fig = plt.figure(figsize=(10, rows_high))
    if a.kind == "hist":
        draw_hist(result, fig)
    else:
        ax = fig.add_subplot()
        {"line": draw_line, "bar": draw_bar, "table": draw_table}[a.kind](result, ax)
    title = f"{a.title} ({result.run})"
    fig.suptitle(f"{title}\n{result.note}" if result.note else title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
