"""Every analysis query on small hand-built ledgers whose answers are known."""
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import N, NOISY, add_curve, add_scores, manifest, run_record
from dissect import ledger
from dissect.cli.main import cli
from dissect.ledger import report

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"

def analyse(root, key, run="dis", **kw):
    result = report.run_analysis(key, report.Request(ledger=str(root), run=run, **kw))
    return [dict(zip(result.columns, row)) for row in result.rows], result


def test_tp_accuracy_is_exactly_three_quarters(hand_ledger):
    rows, _ = analyse(hand_ledger, "4d", vs=("perfect",))
    dis = next(r for r in rows if r["run"] == "dis")
    assert dis["tp_accuracy"] == 0.75 and dis["tp_accuracy_last_epoch"] == 0.75
    assert dis["tp_accuracy_after_warmup"] == 0.75


def test_auroc_of_delta_one_half_zero(hand_ledger):
    rows, _ = analyse(hand_ledger, "4d", vs=("perfect", "reversed", "flat"))
    auroc = {r["run"]: r["auroc_delta"] for r in rows}
    assert auroc["perfect"] == 1.0 and auroc["reversed"] == 0.0 and auroc["flat"] == 0.5


def test_oracle_split_is_its_top_half(hand_ledger):
    rows, _ = analyse(hand_ledger, "4d", vs=("perfect",), oracle="o")
    dis = next(r for r in rows if r["run"] == "dis")
    assert dis["tp_accuracy"] == 0.25          # of 0, 1, 2, 6 only 6 is in the oracle's top half
    rows, _ = analyse(hand_ledger, "4c", oracle="o")
    assert {r["oracle_median"] for r in rows} == {35.0}
    assert sum(r["n"] for r in rows if r["subset"] == "selected") == 4
    assert sum(r["n"] for r in rows if r["subset"] == "all") == N


def test_centred_mean_is_zero_and_split_by_cleanliness(hand_ledger):
    rows, _ = analyse(hand_ledger, "3c")
    for epoch in (0, 1):
        part = [r for r in rows if r["epoch"] == epoch]
        assert sum(r["mean_centred_clipscore"] * r["n"] for r in part) == pytest.approx(0.0)
    by = {(r["epoch"], r["is_clean"]): r["mean_centred_clipscore"] for r in rows}
    assert by[(0, True)] == pytest.approx(-2.5) and by[(0, False)] == pytest.approx(7.5)
    rows, _ = analyse(hand_ledger, "3b")
    assert {(r["epoch"], r["is_clean"]): r["mean_clipscore"] for r in rows}[(0, False)] == 20.0


def test_acceleration_counts_trained_iterations_or_steps(hand_ledger):
    # dis trains 2 of 8 per step and reaches 100 at step 100 (25 iterations); full trains 8 of 8, 100 at step 200
    rows, result = analyse(hand_ledger, "5a", vs=("full",))
    assert {r["acceleration"] for r in rows} == {8.0} and {r["target"] for r in rows} == {100.0}
    assert {r["x_axis"] for r in rows} == {"trained"} and "acceleration 8.00x on iterations" in result.note
    assert {r["run_minus_full_at_same_x"] for r in rows} == {None}   # full has no eval by 25 iterations
    rows, result = analyse(hand_ledger, "5a", vs=("full",), x="steps")
    assert {r["acceleration"] for r in rows} == {2.0}
    assert {r["run_minus_full_at_same_x"] for r in rows} == {20.0}   # 100 at step 100 against full's 80
    assert "+20.00 vs full" in result.note


def test_table6_seconds_to_targets(hand_ledger):
    rows, _ = analyse(hand_ledger, "table6", vs=("flat", "full"))
    by = {r["run"]: r for r in rows}
    # random (flat) best 90: dis never reaches 90 before step 100 -> at step 100 (100 x 1.5 s with its
    # scoring pass, 100 s of core); full at 200 steps x 2 s
    assert by["dis"]["seconds_to_random_best"] == 150.0 and by["dis"]["seconds_to_selection_best"] == 150.0
    assert by["dis"]["core_seconds_to_random_best"] == 100.0
    assert by["full"]["seconds_to_random_best"] == 400.0 and by["full"]["core_seconds_to_selection_best"] == 400.0
    assert by["flat"]["seconds_to_selection_best"] is None
    # the full run takes 300 steps x 2 s: dis saves 1 - 150 / 600, or 1 - 100 / 600 of core time
    assert by["dis"]["saved_pct_to_random_best"] == 75.0 and by["full"]["saved_pct_total"] == 0.0
    assert by["dis"]["core_saved_pct_to_random_best"] == 83.3


def test_table1_and_figure2_mean_and_std_over_seeds(hand_ledger):
    rows, result = analyse(hand_ledger, "2", vs=("perfect", "full"))
    by = {(r["method"], r["ratio"]): r for r in rows}
    # nominal r = 0.3, but its steps trained 2 of 8 samples: placed at 0.25, and the note says so
    warm = by[("dissect-warmup", 0.25)]
    assert warm["nominal_ratio"] == 0.3 and by[("full", 1.0)]["nominal_ratio"] == 1.0
    assert "off the nominal ratio: dissect-warmup r=0.3 trained 0.25" in result.note
    assert warm["metric_mean"] == 105.0 and warm["n"] == 2 and warm["setting"] == ""
    assert warm["metric_std"] == pytest.approx(np.std([100, 110], ddof=1))
    rows, result = analyse(hand_ledger, "table1", vs=("perfect", "full"))
    assert [r["method"] for r in rows] == ["full", "dissect-warmup"]   # full data first, as in the paper
    warm = rows[1]
    assert warm["test_set"] == "test" and warm["r=0.25 IR@1"] == "21.00 ± 1.41 (2)"   # tr_r1: image->text
    assert warm["r=0.25 TR@10"] == "31.50 ± 2.12 (2)"   # ir_r10: text->image
    assert warm["off_nominal"] == "r=0.3 trained 0.25" and rows[0]["off_nominal"] is None
    assert "dissect-warmup r=0.3 trained 0.25" in result.note
    assert [c for c in rows[0] if c.startswith("r=")] == ["r=0.25 IR@1", "r=0.25 IR@10", "r=0.25 TR@1",
                                                          "r=0.25 TR@10", "r=1.0 IR@1", "r=1.0 IR@10", "r=1.0 TR@1",
                                                          "r=1.0 TR@10"]


def test_histograms_and_stages(hand_ledger):
    rows, _ = analyse(hand_ledger, "3a", epochs=(0,))
    assert {(r["is_clean"], r["bin"], r["n"]) for r in rows} == {(True, 10.0, 6), (False, 20.0, 2)}
    rows, _ = analyse(hand_ledger, "4a", epochs=(1,))
    assert {(r["subset"], r["n"]) for r in rows} == {("all", 8), ("selected", 4)}
    assert {r["scored_by"] for r in rows} == {"the run"}
    rows, _ = analyse(hand_ledger, "4a", epochs=(1,), oracle="o")   # the oracle's view of dis's picks 0, 1, 2, 6
    assert sorted(r["bin"] for r in rows if r["subset"] == "selected") == [0.0, 10.0, 20.0, 60.0]
    assert sorted(r["bin"] for r in rows if r["subset"] == "all") == [10.0 * i for i in range(8)]
    assert {r["scored_by"] for r in rows} == {"oracle o"}
    rows, result = analyse(hand_ledger, "4b", vs=("perfect",))
    assert {r["clean_minus_noisy"] for r in rows if r["run"] == "dis"} == {0.0}
    assert "clean - noisy mean" in result.note


@pytest.mark.parametrize("args,message", [
    (["--figure", "3c", "--run", "nope"], "run 'nope' is not in"),
    (["--figure", "4c", "--run", "dis"], "figure 4c needs an oracle"),
    (["--figure", "4d", "--run", "dis", "--oracle", "missing"], "oracle 'missing' is not in"),
    (["--figure", "5a", "--run", "perfect", "--vs", "flat"], "needs a full run"),
    (["--figure", "3c", "--run", "dis", "--oracle", "o", "--truth"], "exclude each other"),
])
def test_report_refuses_what_the_ledger_cannot_answer(hand_ledger, args, message):
    result = CliRunner().invoke(cli, ["report", "--ledger", str(hand_ledger), *args])
    assert result.exit_code == 2 and message in result.output


def test_report_cli_prints_and_draws(hand_ledger, tmp_path):
    result = CliRunner().invoke(cli, ["report", "--figure", "4d", "--ledger", str(hand_ledger), "--run", "dis",
                                      "--vs", "perfect", "--format", "csv", "--out", str(tmp_path / "f.png")])
    assert result.exit_code == 0, result.output
    assert "dis,dissect-warmup,0.3,0.75,0.75,0.75" in result.output
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    result = CliRunner().invoke(cli, ["report", "--all", "--ledger", str(hand_ledger), "--run", "dis",
                                      "--oracle", "o", "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    index = (tmp_path / "all" / "index.html").read_text()
    assert "fig3c.png" in index and "table1.png" in index and "fig4c.png" in index
    assert len(list((tmp_path / "all").glob("*.png"))) == 13


def test_centred_macro_takes_out_the_run_epoch_mean(hand_ledger):
    _, rows = ledger.query(hand_ledger, "SELECT run, epoch, sum(c), max(abs(c)) FROM (SELECT run, epoch, "
                                        "centred(clipscore, run, epoch) AS c FROM scores) GROUP BY ALL ORDER BY ALL")
    assert all(abs(total) < 1e-4 for _, _, total, _ in rows)
    assert ("dis", 0, 0.0, 7.5) in [(r, e, round(t, 4), m) for r, e, t, m in rows]


def test_selection_quality_is_mean_and_std_over_seeds(hand_ledger):
    columns, rows = ledger.query(hand_ledger, (BENCHMARKS / "selection_quality.sql").read_text(), variables={"pattern": "%"})
    table = {(r[0], r[1]): dict(zip(columns, r)) for r in rows}
    warmup = table[("dissect-warmup", 0.3)]       # dis (R@sum 100) and perfect (110), seeds 0 and 1
    assert (warmup["rsum4_mean"], warmup["rsum4_std"], warmup["seeds"]) == (105.0, 7.1, 2)
    assert warmup["clean_selected"] == 0.875 and warmup["clean_selected_last_epoch"] == 0.875
    assert warmup["top1_mean"] is None             # no labels, no zero-shot classification
    flat = table[("random", 0.3)]
    assert (flat["rsum4_mean"], flat["rsum4_std"], flat["clean_selected"]) == (90.0, 0.0, 0.5)


def test_regime_map_pairs_seeds_and_draws(tmp_path):
    ledger.add_samples(tmp_path, "d", "f" * 64, manifest())
    finals = {"random-s0": 100.0, "random-s1": 80.0, "tw1-s0": 110.0, "tw1-s1": 70.0}
    with ledger.LedgerWriter(tmp_path) as writer:
        for suffix, rsum in finals.items():
            name = f"regime-n8-e2-{suffix}"
            record = run_record(name, "random" if "random" in suffix else "dissect-warmup", seed=int(suffix[-1]))
            ledger.Run(tmp_path, record.name).write_record(replace(record, config={"warmup_epochs": 1}))
            add_curve(writer, name, [(10, rsum)])
            add_scores(writer, name, 1, np.zeros(N), np.zeros(N), [0, 6])    # half the picks clean
    columns, rows = ledger.query(tmp_path, (BENCHMARKS / "regime_map.sql").read_text())
    cell = dict(zip(columns, rows[0]))
    assert len(rows) == 1
    # differences by seed: +10 and -10
    assert (cell["n_train"], cell["epochs"], cell["warmup_epochs"], cell["seeds"]) == (N, 2, 1, 2)
    assert (cell["dissect_rsum"], cell["random_rsum"], cell["dissect_minus_random"]) == (90.0, 90.0, 0.0)
    assert cell["difference_std"] == 14.1 and cell["dissect_clean_after_warmup"] == 0.5
    sys.path.insert(0, str(BENCHMARKS))
    from selection_quality import draw_regime_map

    assert draw_regime_map(columns, rows, tmp_path / "map.png").stat().st_size > 0


@pytest.mark.parametrize("oracle", [None, "o"])
def test_the_summaries_written_with_each_epoch_agree_with_the_scores(hand_ledger, oracle):
    con = ledger.connect(hand_ledger)
    ledger.set_variables(con, {"runs": ["dis", "perfect", "reversed", "flat"], "oracle": oracle})
    (summarised,) = con.execute(ledger.store.sql_text("summarised.sql")).fetchone()
    assert summarised is True
    rows = {}
    for flag in (True, False):
        con.execute("SET VARIABLE summarised = ?", [flag])
        rows[flag] = con.execute("SELECT run, epoch, is_clean, n, n_scored, sum_clipscore, n_selected "
                                 "FROM class_stats(['dis', 'perfect', 'reversed', 'flat'], ?) ORDER BY ALL",
                                 [oracle]).fetchall()
    assert len(rows[True]) == 10   # dis: 2 epochs, the others 1, two classes each
    assert [r[:5] + r[6:] for r in rows[True]] == [r[:5] + r[6:] for r in rows[False]]
    assert [r[5] for r in rows[True]] == pytest.approx([r[5] for r in rows[False]])
    ranks = {}
    for flag in (True, False):
        con.execute("SET VARIABLE summarised = ?", [flag])
        ranks[flag] = con.execute("SELECT * FROM class_ranks(['dis', 'perfect', 'reversed', 'flat'], ?, 1) "
                                  "ORDER BY ALL", [oracle]).fetchall()
    assert len(ranks[True]) == 8 and ranks[True] == ranks[False]   # mid-ranks: sums of halves, exact


def test_a_writer_summarises_under_an_oracle_committed_while_it_runs(tmp_path):
    ledger.add_samples(tmp_path, "d", "f" * 64, manifest())
    ledger.Run(tmp_path, "r").write_record(run_record("r", "dissect-warmup"))
    clean = np.array([i not in NOISY for i in range(N)])
    with ledger.LedgerWriter(tmp_path) as writer:
        add_scores(writer, "r", 0, np.where(clean, 10.0, 20.0), np.zeros(N), [0, 1])
        ledger.Run(tmp_path, "r").commit_epoch(writer, 0)
        with ledger.LedgerWriter(tmp_path) as scorer:   # `dissect score` in another process
            scorer.add("oracle", {"name": "o"}, {"dataset": ["d"] * N, "sample_id": np.arange(N),
                                                 "clipscore": np.arange(N, dtype=np.float32), "loss": np.ones(N),
                                                 "negcliploss": np.zeros(N, dtype=np.float32)})
        add_scores(writer, "r", 1, np.where(clean, 10.0, 20.0), np.zeros(N), [0, 1])
        ledger.Run(tmp_path, "r").commit_epoch(writer, 1)
    _, rows = ledger.query(tmp_path, "SELECT epoch, oracle, sum(n) FROM summaries GROUP BY ALL ORDER BY ALL")
    assert rows == [(0, None, N), (1, "o", N), (1, None, N)]
