"""`dissect report`: each figure and table of the paper is one SQL file in
queries/, run over the ledger, printed as a table and drawn with matplotlib.

A figure's SQL reads DuckDB variables (getvariable('run'), 'runs', 'oracle',
'epochs', 'full', 'random', 'metric', 'x'), so the same file runs in the duckdb shell after
`SET VARIABLE run = '...'`. `resolve` turns the user's flags into them and
checks, before any query runs, that the ledger has what the figure needs.
"""
import html
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from tqdm import tqdm

from dissect.ledger import spark
from dissect.ledger.store import ENGINES, LedgerError, connect, set_variables, sql_text


@dataclass(frozen=True)
class Analysis:
    key: str          # what --figure / --table takes
    title: str
    meaning: str      # one line for the index page
    kind: str         # how it is drawn: line, hist, bar, table
    needs_split: bool = False
    needs_oracle: bool = False
    x: str = ""
    y: str = ""
    hue: str = ""
    facet: str = ""

    @property
    def sql_file(self) -> str:
        return f"{'table' if self.key.startswith('table') else 'fig'}{self.key.removeprefix('table')}.sql"

    def sql(self) -> str:
        return resources.files("dissect.ledger").joinpath("queries", self.sql_file).read_text()


ANALYSES = {a.key: a for a in (
    Analysis("2", "Retrieval vs selection ratio, every method",
             "Final metric (the paper's R@Sum by default) of each strategy at each ratio, mean and std over "
             "the seeds of one setting.",
             "line", x="ratio", y="metric_mean", hue="method"),
    Analysis("3a", "CLIPScore histograms, clean vs noisy",
             "How the clean and the noisy pairs' CLIPScores overlap more as training memorises "
             "(the dataset's full-data run where there is one, as in the paper).",
             "hist", needs_split=True, hue="is_clean", facet="epoch"),
    Analysis("3b", "Mean CLIPScore per epoch, clean vs noisy",
             "Clean pairs are learned first; noisy pairs catch up as they are memorised (full-data run).",
             "line", needs_split=True, x="epoch", y="mean_clipscore", hue="is_clean"),
    Analysis("3c", "Mean CLIPScore minus the epoch mean, clean vs noisy",
             "The same with the drift of the whole distribution removed: the gap that closes.",
             "line", needs_split=True, x="epoch", y="mean_centred_clipscore", hue="is_clean"),
    Analysis("4a", "CLIPScore of the selected samples vs all, per stage",
             "Which part of the score distribution the strategy trains on, early to late: as the oracle "
             "scores them with --oracle (the paper's \"shifting toward cleaner samples\"), else as the run "
             "itself did.",
             "hist", hue="subset", facet="epoch"),
    Analysis("4b", "Final CLIPScore distribution, clean vs noisy, per run",
             "The clean-minus-noisy gap of the final model (paper: 0.65 full data, 2.14 DISSect).",
             "hist", needs_split=True, hue="is_clean", facet="run"),
    Analysis("4c", "Oracle CLIPScore of the selected samples vs all",
             "Where the last epoch's picks sit in the oracle's score distribution; its median splits clean from noisy.",
             "hist", needs_split=True, needs_oracle=True, hue="subset"),
    Analysis("4d", "TP accuracy of each run",
             "Fraction of the selected samples that are clean (all epochs, after the warm-up, last epoch), and "
             "AUROC of delta and CLIPScore for clean vs noisy (n/a: nothing to rank).",
             "bar", needs_split=True, x="run", y="tp_accuracy"),
    Analysis("5a", "Retrieval vs iterations, run vs full data",
             "Acceleration: iterations (trained samples / batch size, as the paper counts them) full data needs "
             "to reach the target over those the run needs; and the difference at the run's final iteration count.",
             "line", x="x", y="value", hue="run"),
    Analysis("5b", "Retrieval vs selection ratio, run's strategy vs random",
             "Final metric of the strategy and of random selection at each ratio.",
             "line", x="ratio", y="metric_mean", hue="method"),
    Analysis("table1", "Table 1: retrieval grid, methods x ratios",
             "Final IR@1, IR@10, TR@1, TR@10 per strategy and ratio, one panel per test set, "
             "mean ± std (n seeds of one setting). As the paper labels them: IR is image-to-text (the "
             "ledger's tr_r*), TR text-to-image (ir_r*).", "table"),
    Analysis("tabletime", "Where the time goes, per epoch",
             "Seconds per epoch waiting for data, scoring, training, the steps' bookkeeping, the eval and the "
             "ledger writer: the largest bounds the run.", "table"),
    Analysis("table6", "Table 6: wall-clock to reach a target",
             "Seconds of steps each run needs to reach the random run's best and the selection run's best, "
             "and the % of the full run's time saved: seconds_* count every second of the steps (the scoring pass "
             "included: what a user waits for), core_seconds_* leave t_score out, as the paper's Table 6 does.",
             "table"),
)}
FIGURES = [k for k in ANALYSES if not k.startswith("table")]
# The paper draws these for plain full-data training: where memorisation shows.
MEMORISATION = ("3a", "3b", "3c")
METRIC_ANALYSES = ("2", "5a", "5b", "table6")
X_AXES = ("trained", "steps", "seconds")
TABLES = [k.removeprefix("table") for k in ANALYSES if k.startswith("table")]


@dataclass
class Request:
    ledger: str
    run: str | None = None          # None: 3a-c show the ledger's latest full-data run
    vs: tuple[str, ...] = ()
    oracle: str | None = None
    truth: bool = False
    epochs: tuple[int, ...] = ()
    metric: str = "rsum4"           # the eval metric of 2, 5a, 5b, table 6
    x: str = "trained"              # 5a's axis
    full_for_memorisation: bool = False   # 3a-c show the run's dataset's full-data run where there is one
    skip_damaged: bool = False      # leave damaged parts out rather than refuse (store.connect)
    engine: str = "duckdb"          # or spark: the query on Spark SQL (spark.py)


@dataclass
class Result:
    analysis: Analysis
    run: str
    columns: list[str]
    rows: list[tuple]
    params: dict

    @property
    def note(self) -> str:
        """The one number a figure is about, where it has one, and what it was computed on."""
        first = dict(zip(self.columns, self.rows[0])) if self.rows else {}
        metric = f"{self.params['metric']}: " if "metric" in self.params else ""
        if "acceleration" in first:
            axis = {"trained": "iterations (trained samples / batch size)", "steps": "steps",
                    "seconds": "seconds"}[first["x_axis"]]
            acceleration = "not reached" if first["acceleration"] is None else f"{first['acceleration']:.2f}x"
            gain = first["run_minus_full_at_same_x"]
            return (f"{metric}acceleration {acceleration} on {axis} to {first['target']:.1f}"
                    + ("" if gain is None else f"; {gain:+.2f} vs full at the run's final {first['x_axis']}"))
        if "seconds_to_selection_best" in first:
            return f"{metric}selection run {self.run}, random {self.params['random']}, full {self.params['full']}"
        if "clean_minus_noisy" in first:
            gaps = {r[self.columns.index("run")]: r[self.columns.index("clean_minus_noisy")] for r in self.rows}
            return "clean - noisy mean: " + ", ".join(f"{k} {v:.2f}" for k, v in gaps.items() if v is not None)
        if "nominal_ratio" in first:
            off = sorted({f"{r[self.columns.index('method')]} r={r[self.columns.index('nominal_ratio')]} trained "
                          f"{r[self.columns.index('ratio')]}" for r in self.rows
                          if abs(r[self.columns.index("ratio")] - r[self.columns.index("nominal_ratio")]) > 0.02})
            return metric + "placed at the fraction trained" + (f"; off the nominal ratio: {', '.join(off)}" if off else "")
        if "off_nominal" in first:
            off = sorted({f"{r[self.columns.index('method')]} {r[self.columns.index('off_nominal')]}" for r in self.rows
                          if r[self.columns.index("off_nominal")]})
            return "r= the fraction trained" + (f"; off the nominal ratio: {', '.join(off)}" if off else "")
        return metric.removesuffix(": ")


def _one(con, sql, params=()):
    row = con.execute(sql, list(params)).fetchone()
    return row[0] if row else None


def subject_run(con, analysis: Analysis, req: Request) -> str:
    """The run an analysis is about: --run, except that 3a-c show a full-data run with scores
    (of --run's dataset with full_for_memorisation, the ledger's latest without --run) where
    there is one."""
    if analysis.key in MEMORISATION and (req.run is None or req.full_for_memorisation):
        dataset = _one(con, "SELECT dataset FROM runs WHERE name = ?", [req.run]) if req.run else None
        full = _one(con, "SELECT name FROM runs WHERE strategy = 'full' AND (? IS NULL OR dataset = ?) "
                         "AND name IN (SELECT DISTINCT run FROM scores) ORDER BY start DESC LIMIT 1",
                    [dataset, dataset])
        if full is not None:
            return full
    if req.run is None:
        what = "there is no full-data run to show" if analysis.key in MEMORISATION else "it is about one run"
        raise LedgerError(f"{analysis.title.split(':')[0]}: pass --run ({what}); "
                          f"`dissect runs --ledger {req.ledger}` lists the runs")
    return req.run


def resolve(con, analysis: Analysis, req: Request) -> dict:
    """The query's parameters from the user's flags, or a LedgerError saying what is missing."""
    where = f"ledger {req.ledger}"
    subject = subject_run(con, analysis, req)
    run = con.execute("SELECT name, dataset, strategy, epochs FROM runs WHERE name = ?", [subject]).fetchone()
    if run is None:
        raise LedgerError(f"run {subject!r} is not in {where}: `dissect runs --ledger {req.ledger}` lists them")
    _, dataset, _, _ = run
    for other in req.vs:
        other_dataset = _one(con, "SELECT dataset FROM runs WHERE name = ?", [other])
        if other_dataset is None:
            raise LedgerError(f"--vs run {other!r} is not in {where}")
        if other_dataset != dataset:
            raise LedgerError(f"--vs run {other!r} trained on {other_dataset}, run {subject!r} on {dataset}: "
                              "compare runs of one dataset")
    runs = [subject, *req.vs] if req.vs else [
        name for (name,) in con.execute("SELECT name FROM runs WHERE dataset = ? ORDER BY start", [dataset]).fetchall()]
    params = {"run": subject, "runs": runs}

    if analysis.needs_oracle and not req.oracle:
        raise LedgerError(f"figure {analysis.key} needs an oracle: score one with `dissect score DATA --ckpt CKPT "
                          f"--model M --name NAME --ledger {req.ledger}` and pass --oracle NAME")
    if req.oracle and (analysis.needs_split or analysis.key == "4a"):
        oracle_dataset = _one(con, "SELECT any_value(dataset) FROM oracle WHERE name = ?", [req.oracle])
        if oracle_dataset is None:
            raise LedgerError(f"oracle {req.oracle!r} is not in {where}: make it with `dissect score DATA "
                              f"--ckpt CKPT --model M --name {req.oracle} --ledger {req.ledger}`")
        if oracle_dataset != dataset:
            raise LedgerError(f"oracle {req.oracle!r} scored {oracle_dataset}, run {subject!r} trained on {dataset}")
    if analysis.key == "4a":
        params["oracle"] = req.oracle
    if analysis.needs_split:
        if req.oracle and not req.truth:
            params["oracle"] = req.oracle
        else:
            flagged = _one(con, "SELECT count(is_noisy) FROM samples WHERE dataset = ?", [dataset])
            if not flagged:
                raise LedgerError(f"{dataset} has no ground-truth noise flags: pass --oracle NAME "
                                  f"(make one with `dissect score`)")
            params["oracle"] = None

    if analysis.key in ("3b", "3c", "4d"):
        runs_split = [subject] if analysis.key != "4d" else runs
        set_variables(con, {"runs": runs_split, "oracle": params["oracle"]})
        params["summarised"] = con.execute(sql_text("summarised.sql")).fetchone()[0]
    if analysis.key in ("3a", "4a", "4b", "4c", "4d"):
        last = _one(con, "SELECT max(epoch) FROM scores WHERE run = ?", [subject])  # read off the hive paths
        if last is None:
            raise LedgerError(f"run {subject!r} has no scores in {where}")
        params["epochs"] = list(req.epochs) or default_epochs(con, analysis.key, subject, last)
        params["epoch"] = req.epochs[-1] if req.epochs else last
    if analysis.key == "5a":
        params["full"] = _pick_run(con, subject, runs, "full", "5a")
        if req.x not in X_AXES:
            raise LedgerError(f"--x {req.x!r}: use one of {', '.join(X_AXES)}")
        params["x"] = req.x
    if analysis.key == "table6":
        params["random"] = _pick_run(con, subject, runs, "random", "table 6")
        params["full"] = _pick_run(con, subject, runs, "full", "table 6")
    if analysis.key in (*METRIC_ANALYSES, "5b", "table1"):
        has_evals = _one(con, "SELECT count(*) FROM evals WHERE run = ?", [subject])
        if not has_evals:
            raise LedgerError(f"{analysis.title.split(':')[0]} needs evals and run {subject!r} has none: "
                              "train with a test split or --test-data")
    if analysis.key in METRIC_ANALYSES:
        params["metric"] = resolve_metric(con, req, subject)
    used = set(re.findall(r"getvariable\('([a-z_]+)'\)", analysis.sql()))
    used |= {"run", "summarised"}   # summarised: read by the class_stats macro
    return {k: v for k, v in params.items() if k in used}


def default_epochs(con, key: str, run: str, last: int) -> list[int]:
    """3a: a quarter of the way and the end. 4a: stages that straddle DISSect-Warmup's T_w
    (its last warm-up epoch, the first after, the last); else the start, middle and end."""
    if key == "3a":
        return sorted({last // 4, last})
    warmup = _one(con, "SELECT warmup_epochs(?)", [run])
    if warmup:
        return sorted({min(warmup - 1, last), min(warmup, last), last})
    return sorted({0, last // 2, last})


def resolve_metric(con, req: Request, run: str) -> str:
    """--metric as the run recorded it: NAME itself, or the first test set's SET/NAME."""
    metrics = [m for (m,) in con.execute("SELECT DISTINCT metric FROM evals WHERE run = ? ORDER BY 1", [run]).fetchall()]
    if req.metric in metrics:
        return req.metric
    prefixed = [m for m in metrics if m.endswith(f"/{req.metric}")]
    if prefixed:
        return prefixed[0]
    raise LedgerError(f"run {run!r} has no eval metric {req.metric!r}: it has {', '.join(metrics)} (--metric)")


def _pick_run(con, subject: str, runs: list[str], strategy: str, what: str) -> str:
    name = _one(con, "SELECT name FROM runs WHERE list_contains(?, name) AND strategy = ? AND name <> ? "
                     "ORDER BY start LIMIT 1", [runs, strategy, subject])
    if name is None:
        raise LedgerError(f"{what} needs a {strategy} run on the same dataset: train one with "
                          f"--strategy {strategy} and pass it with --vs")
    return name


def run_analysis(key: str, req: Request) -> Result:
    if key not in ANALYSES:
        raise LedgerError(f"unknown analysis {key!r}: figures {', '.join(FIGURES)}; tables {', '.join(TABLES)}")
    if req.engine not in ENGINES:
        raise LedgerError(f"unknown engine {req.engine!r}: choose one of {', '.join(ENGINES)}")
    analysis = ANALYSES[key]
    con = connect(req.ledger, skip_damaged=req.skip_damaged)
    try:
        params = resolve(con, analysis, req)   # on DuckDB with either engine: the records and partitions
        if req.engine == "duckdb":
            set_variables(con, params)
            cur = con.execute(analysis.sql())
            columns = [d[0] for d in cur.description]
            rows = cur.fetchall()
    finally:
        con.close()
    if req.engine == "spark":
        columns, rows = spark.query(req.ledger, analysis.sql(), variables=params, skip_damaged=req.skip_damaged)
    if not rows:
        raise LedgerError(f"{analysis.title} has no data for run {params['run']!r} in ledger {req.ledger}")
    return Result(analysis, params["run"], columns, rows, params)


def report_all(req: Request, out: Path, draw, quiet: bool = True) -> list[tuple[Analysis, str | None]]:
    """Every analysis the ledger has data for into OUT, plus index.html; returns (analysis, skip reason).
    3a-c show the dataset's full-data run, as the paper draws them, where there is one."""
    con = connect(req.ledger, skip_damaged=req.skip_damaged)
    try:
        if req.run is None or _one(con, "SELECT count(*) FROM runs WHERE name = ?", [req.run]) == 0:
            raise LedgerError(f"run {req.run!r} is not in ledger {req.ledger}: pass --run with one that "
                              f"`dissect runs --ledger {req.ledger}` lists")
    finally:
        con.close()
    out.mkdir(parents=True, exist_ok=True)
    req = replace(req, full_for_memorisation=True)
    done = []
    for key, analysis in tqdm(ANALYSES.items(), desc="report", unit="analysis", disable=quiet):
        try:
            result = run_analysis(key, req)
        except LedgerError as e:
            done.append((analysis, None, str(e)))
            continue
        draw(result, out / f"{analysis.sql_file.removesuffix('.sql')}.png")
        write_csv(result, out / f"{analysis.sql_file.removesuffix('.sql')}.csv")
        done.append((analysis, result, None))
    (out / "index.html").write_text(index_html(req, done))
    return done


def write_csv(result: Result, path: Path) -> None:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(result.columns)
        writer.writerows(result.rows)


def index_html(req: Request, done) -> str:
    parts = [f"<!doctype html><meta charset='utf-8'><title>dissect report: {html.escape(req.run)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}img{max-width:100%}"
             "pre{background:#f4f4f4;padding:8px;overflow-x:auto}</style>",
             f"<h1>dissect report for run {html.escape(req.run)}</h1>",
             f"<p>Ledger <code>{html.escape(str(req.ledger))}</code>. Each section is one SQL file of "
             "<code>dissect/ledger/queries/</code>, run over the ledger.</p>"]
    for analysis, result, skipped in done:
        stem = analysis.sql_file.removesuffix(".sql")
        parts.append(f"<h2>{html.escape(analysis.title)}</h2><p>{html.escape(analysis.meaning)}</p>")
        if skipped:
            parts.append(f"<p><em>Not drawn: {html.escape(skipped)}</em></p>")
            continue
        shown = f"Run shown: <code>{html.escape(result.run)}</code>. {html.escape(result.note)}"
        parts.append(f"<p>{shown}</p><img src='{stem}.png' alt='{html.escape(analysis.title)}'>"
                     f"<p><a href='{stem}.csv'>{stem}.csv</a></p>"
                     f"<details><summary>{analysis.sql_file}</summary><pre>{html.escape(analysis.sql())}</pre></details>")
    return "\n".join(parts)
