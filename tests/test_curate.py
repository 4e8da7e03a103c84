"""`dissect curate`: every rule on hand-built ledgers with known answers, the subset's
formats, training on a subset, and the refusals."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from click.testing import CliRunner
from PIL import Image

from conftest import N, add_scores, manifest, run_record
from dissect import ledger
from dissect.cli.main import cli
from dissect.ledger import curation


def kept(root, rule, **kw):
    return curation.curate(root, rule, **kw).table["sample_id"].to_pylist()


def test_oracle_rules_keep_the_oracles_best(hand_ledger):
    # oracle o: clipscore 10 * id, negcliploss -id
    assert kept(hand_ledger, "oracle-clipscore", keep=0.5, oracle="o") == [7, 6, 5, 4]
    assert kept(hand_ledger, "oracle-cliploss", keep=0.5, oracle="o") == [0, 1, 2, 3]


def test_history_rules_read_the_run(hand_ledger):
    # perfect, epoch 1: clipscore = id
    assert kept(hand_ledger, "final-clipscore", keep_n=3, run="perfect") == [7, 6, 5]
    # dis: epoch 0 clean 10 / noisy 20 (centred -2.5 / 7.5), epoch 1 all 30 (centred 0)
    assert kept(hand_ledger, "mean-clipscore", keep_n=2, run="dis") == [6, 7]
    subset = curation.curate(hand_ledger, "delta", keep_n=2, run="dis", hist_epoch=0)
    assert subset.table["sample_id"].to_pylist() == [6, 7] and subset.table["score"].to_pylist() == [7.5, 7.5]
    assert subset.meta.rule == "delta" and subset.meta.run == "dis" and subset.meta.n_train == N


def test_until_epoch_reads_the_history_as_if_the_run_had_stopped_there(hand_ledger, tmp_path):
    # dis: epoch 0 clean 10 / noisy 20, epoch 1 all 30: up to epoch 0 the noisy pairs lead
    assert kept(hand_ledger, "final-clipscore", keep_n=2, run="dis", until_epoch=0) == [6, 7]
    assert kept(hand_ledger, "final-clipscore", keep_n=2, run="dis") == [0, 1]   # epoch 1: all tied, by id
    subset = curation.curate(hand_ledger, "mean-clipscore", keep_n=2, run="dis", until_epoch=0)
    assert subset.table["score"].to_pylist() == [7.5, 7.5] and subset.meta.until_epoch == 0
    out = tmp_path / "s.parquet"
    result = CliRunner().invoke(cli, ["curate", "--ledger", str(hand_ledger), "--by", "mean-clipscore", "--run",
                                      "dis", "--keep-n", "2", "--until-epoch", "0", "--out", str(out)])
    assert result.exit_code == 0 and "(epochs 0..0 of run dis)" in result.output
    assert curation.read_subset(out)[1].until_epoch == 0
    for args, message in [(["--until-epoch", "5"], "--until-epoch 5 is outside run 'dis''s epochs 0..1"),
                          (["--hist-epoch", "99"], "--hist-epoch 99 is outside"),
                          (["--hist-epoch", "1", "--until-epoch", "0"], "--hist-epoch 1 is after --until-epoch 0")]:
        result = CliRunner().invoke(cli, ["curate", "--ledger", str(hand_ledger), "--by", "delta", "--run", "dis",
                                          "--keep-n", "2", "--out", str(tmp_path / "x.parquet"), *args])
        assert result.exit_code == 2 and message in result.output, result.output
    with pytest.raises(ledger.LedgerError, match="--until-epoch is for the rules that read a run's history"):
        curation.curate(hand_ledger, "random", keep_n=2, dataset="d", until_epoch=0)
    assert not (tmp_path / "x.parquet").exists()


def test_the_ends_of_a_ranking_are_what_it_keeps_and_drops_first(hand_ledger):
    ends = curation.ends(hand_ledger, "final-clipscore", n=2, run="perfect").to_pylist()   # clipscore = id
    assert [(r["end"], r["sample_id"], r["rank"]) for r in ends] == [
        ("kept first", 7, 1), ("kept first", 6, 2), ("dropped first", 0, 8), ("dropped first", 1, 7)]
    assert [r["is_noisy"] for r in ends] == [True, True, False, False]


def test_random_is_seeded(hand_ledger):
    first = kept(hand_ledger, "random", keep=0.5, dataset="d", seed=1)
    assert first == kept(hand_ledger, "random", keep=0.5, dataset="d", seed=1) and len(first) == 4
    assert {tuple(kept(hand_ledger, "random", keep=0.5, dataset="d", seed=s)) for s in range(5)} != {tuple(first)}


def test_forgetting_counts_learned_to_forgotten(tmp_path):
    ledger.add_samples(tmp_path, "d", "f" * 64, manifest())
    ledger.Run(tmp_path, "f").write_record(run_record("f", "full", 1.0, epochs=3))
    # id 0: learned, forgotten, learned (1 event); id 1: always learned (0); id 2: never learned (3 =
    # epochs, the most forgettable); id 3: learned then forgotten twice over (1, as it never comes back)
    learned = {0: [0, 1, 3], 1: [1], 2: [0, 1]}
    with ledger.LedgerWriter(tmp_path) as writer:
        for epoch in range(3):
            add_scores(writer, "f", epoch, np.zeros(N), np.zeros(N), [], correct=learned[epoch])
    subset = curation.curate(tmp_path, "forgetting", keep_n=N, run="f")
    scores = dict(zip(subset.table["sample_id"].to_pylist(), subset.table["score"].to_pylist()))
    assert scores[0] == 1 and scores[1] == 0 and scores[2] == 3 and scores[3] == 1
    assert subset.table["sample_id"].to_pylist()[:1] == [2]


@pytest.mark.parametrize("args,message", [
    (["--by", "oracle-clipscore", "--keep", "1.5", "--oracle", "o"], "--keep 1.5 is outside (0, 1]"),
    (["--by", "oracle-clipscore", "--keep", "0.5"], "needs an oracle"),
    (["--by", "oracle-clipscore", "--keep", "0.5", "--oracle", "nope"], "oracle 'nope' is not in"),
    (["--by", "delta", "--keep", "0.5"], "reads a run's history: pass --run"),
    (["--by", "delta", "--keep", "0.5", "--run", "nope"], "run 'nope' is not in"),
    (["--by", "random", "--keep", "0.5"], "holds 2 datasets"),
    (["--by", "random", "--keep-n", "99", "--dataset", "d"], "more than the 8 train samples"),
    (["--by", "final-clipscore", "--keep", "0.5", "--run", "full"], "scores 0 of the 8 train samples"),
    (["--by", "random", "--keep", "0.5", "--dataset", "d", "--format", "npy"], "have no 128-bit hex uid"),
])
def test_bad_input_is_one_line_and_writes_nothing(hand_ledger, tmp_path, args, message):
    out = tmp_path / "subset.parquet"
    result = CliRunner().invoke(cli, ["curate", "--ledger", str(hand_ledger), "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and message in result.output
    assert not out.exists() and not any(tmp_path.iterdir())


def test_an_existing_subset_is_kept_unless_overwrite(hand_ledger, tmp_path):
    out = tmp_path / "s.parquet"
    args = ["curate", "--ledger", str(hand_ledger), "--by", "oracle-clipscore", "--oracle", "o", "--out", str(out)]
    assert CliRunner().invoke(cli, [*args, "--keep", "0.5"]).exit_code == 0
    before = out.read_bytes()
    result = CliRunner().invoke(cli, [*args, "--keep", "0.25"])
    assert result.exit_code == 2 and "exists: pass --overwrite" in result.output and out.read_bytes() == before
    assert CliRunner().invoke(cli, [*args, "--keep", "0.25", "--overwrite"]).exit_code == 0
    ids, meta, _ = curation.read_subset(out)
    assert ids.tolist() == [6, 7] and meta.keep == 0.25 and meta.oracle == "o"
    assert pq.read_table(out).column_names == ["sample_id", "key", "uid", "caption", "score", "rank"]


def test_datacomp_uid_subset(tmp_path):
    """DataComp's layout: the 128-bit hex uids as a sorted (u8, u8) array, high half first."""
    uids = [f"{i:032x}" for i in (5, 1 << 70, 3, 2)] + [None] * (N - 4)
    ledger.add_samples(tmp_path, "d", "f" * 64, manifest().append_column("uid", pa.array(uids)))
    subset = curation.curate(tmp_path, "random", keep=1.0, dataset="d")
    first_four = curation.Subset(subset.table.filter(pa.compute.less(subset.table["sample_id"], 4)), subset.meta)
    array = np.load(curation.write_subset(first_four, tmp_path / "s.npy", fmt="npy"))
    assert array.dtype == np.dtype("u8,u8")
    assert array.tolist() == [(0, 2), (0, 3), (0, 5), (1 << 6, 0)]      # 1 << 70: high half 1 << 6
    with pytest.raises(ledger.LedgerError, match="4 of the 8 kept samples of d have no 128-bit hex uid"):
        curation.write_subset(subset, tmp_path / "all.npy", fmt="npy")
    assert not (tmp_path / "all.npy").exists()


def test_curate_then_train_on_the_subset_and_reshard(tiny_dataset, tmp_path):
    ledger_dir = tmp_path / "ledger"

    def run(*args):
        return CliRunner().invoke(cli, [str(a) for a in args])

    common = ["--epochs", "2", "--batch-size", "20", "--ledger", ledger_dir, "--workers", "0", "--quiet"]
    assert run("train", tiny_dataset, "--strategy", "full", "--run", "proxy", *common).exit_code == 0
    subset = tmp_path / "half.parquet"
    result = run("curate", "--ledger", ledger_dir, "--by", "final-clipscore", "--run", "proxy", "--keep", "0.5",
                 "--until-epoch", "0", "--out", subset, "--reshard", tmp_path / "shards", "--preview", tmp_path / "ends.png")
    assert result.exit_code == 0, result.output
    assert "kept 50 of 100 train samples" in result.output
    with Image.open(tmp_path / "ends.png") as sheet:   # two blocks of 20 cells, ten to a row
        assert sheet.width > 10 * 96 and sheet.height > 4 * 96
    ids, meta, _ = curation.read_subset(subset)
    result = run("train", tiny_dataset, "--strategy", "random", "--ratio", "0.5", "--subset", subset,
                 "--run", "coreset", *common)
    assert result.exit_code == 0, result.output
    _, rows = ledger.query(ledger_dir, "SELECT epoch, count(*), count(DISTINCT sample_id) FROM scores "
                                       "WHERE run = 'coreset' GROUP BY 1 ORDER BY 1")
    assert rows == [(0, 50, 50), (1, 50, 50)]
    _, rows = ledger.query(ledger_dir, "SELECT DISTINCT sample_id FROM scores WHERE run = 'coreset' ORDER BY 1")
    assert [i for (i,) in rows] == ids.tolist()
    _, rows = ledger.query(ledger_dir, "SELECT subset->>'rule', (subset->>'n')::INT, "
                                       "run_method(strategy, subset), run_ratio(ratio, subset), "
                                       "subset->>'run', (subset->>'until_epoch')::INT FROM runs WHERE name = 'coreset'")
    assert rows == [("final-clipscore", 50, "coreset final-clipscore + random", 0.25, "proxy", 0)]
    # the shards read back with webdataset alone, keys and captions intact
    samples = list(wds.WebDataset(sorted(str(p) for p in (tmp_path / "shards" / "train").glob("*.tar")),
                                  shardshuffle=False))
    _, rows = ledger.query(ledger_dir, "SELECT key, caption FROM samples WHERE list_contains(?, sample_id)",
                           [ids.tolist()])
    assert sorted((s["__key__"], s["txt"].decode()) for s in samples) == sorted(rows)
    assert all("png" in s for s in samples)


def test_a_subset_of_another_dataset_is_refused(tiny_dataset, hand_ledger, tmp_path):
    subset = curation.curate(hand_ledger, "oracle-clipscore", keep=0.5, oracle="o")
    path = curation.write_subset(subset, tmp_path / "s.parquet")
    result = CliRunner().invoke(cli, ["train", str(tiny_dataset), "--subset", str(path), "--ledger",
                                      str(tmp_path / "ledger"), "--quiet"])
    assert result.exit_code == 2 and "was curated from dataset d, not from this one" in result.output
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    result = CliRunner().invoke(cli, ["train", str(tiny_dataset), "--subset", str(tmp_path / "junk.parquet"),
                                      "--ledger", str(tmp_path / "ledger"), "--quiet"])
    assert result.exit_code == 2 and "is not a subset written by `dissect curate`" in result.output
