"""torchrun with 2 CPU processes (gloo): one global view of every sample, a complete ledger, resume."""
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch

from dissect import ledger
from dissect.engine import distributed

pytestmark = pytest.mark.e2e

HELPER = Path(__file__).with_name("ddp_helper.py")


def torchrun(*args, module=True):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "dissect.cli", "--", *map(str, args)] if module else [str(HELPER), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def rows_by_rank(ledger_dir, run):
    """Every scores row with the rank that wrote it (from its part's name)."""
    return duckdb.sql(f"""
        SELECT epoch, step, sample_id, loss, selected,
               regexp_extract(filename, 'part-([0-9]+)-', 1)::INTEGER AS rank
        FROM read_parquet('{ledger_dir}/scores/run={run}/*/*.parquet', hive_partitioning = true, filename = true)
    """).fetchall()


# The runs of one torchrun (global_run): the local-scope run also takes open_clip's other ClipLoss
# path (local loss, gather with grad); infobatch prunes before loading, ncr trains a peer network.
RUNS = [{"run": "g", "select_scope": "global"},
        {"run": "l", "select_scope": "local", "local_loss": True, "gather_with_grad": True},
        {"run": "infobatch", "strategy": "infobatch", "ratio": 0.5, "infobatch_anneal": 0.4},
        {"run": "ncr", "strategy": "ncr", "ratio": 0.5}]


@pytest.fixture(scope="module")
def global_run(tiny_dataset, tmp_path_factory):
    """The RUNS, one after the other in the same torchrun."""
    out = tmp_path_factory.mktemp("ddp")
    proc = torchrun("whole", tiny_dataset, out / "ledger", out, json.dumps(RUNS), module=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_every_sample_once_per_epoch_and_world_size_recorded(global_run):
    _, rows = ledger.query(global_run / "ledger", "SELECT epoch, count(*), count(DISTINCT sample_id) FROM scores "
                                                  "WHERE run = 'g' GROUP BY epoch ORDER BY epoch")
    assert rows == [(0, 100, 100), (1, 100, 100), (2, 100, 100)]
    assert {r[-1] for r in rows_by_rank(global_run / "ledger", "g")} == {0, 1}   # both ranks wrote parts
    assert ledger.Run(global_run / "ledger", "g").record()["world_size"] == 2
    # rank 0 committed every rank's parts of each epoch, and they read back whole
    check = ledger.check(global_run / "ledger")
    assert check.damage == [] and check.in_progress == []
    _, committed = ledger.query(global_run / "ledger", "SELECT count(*) FROM scores WHERE run = 'g'")
    assert committed == [(300,)]


def test_strategy_state_is_identical_on_both_ranks_after_every_epoch(global_run):
    for epoch in (1, 2, 3):
        a = torch.load(global_run / f"state-g-rank0-epoch{epoch}.pt")
        b = torch.load(global_run / f"state-g-rank1-epoch{epoch}.pt")
        assert torch.equal(torch.isnan(a["hist"]), torch.isnan(b["hist"]))
        known = ~torch.isnan(a["hist"])
        assert torch.equal(a["hist"][known], b["hist"][known])   # bit for bit: both ranks computed the same
        assert torch.equal(a["generator"], b["generator"])
    assert not torch.isnan(torch.load(global_run / "state-g-rank0-epoch3.pt")["hist"][:100]).any()


def test_global_scope_takes_the_top_k_of_the_whole_global_batch(global_run):
    rows = rows_by_rank(global_run / "ledger", "g")
    _, steps = ledger.query(global_run / "ledger", "SELECT step, batch_size, n_selected FROM steps WHERE run = 'g'")
    steps = {s: (b, n) for s, b, n in steps}
    uneven = 0
    for step in {r[1] for r in rows}:
        batch = [r for r in rows if r[1] == step]
        batch_size, n_selected = steps[step]
        assert len(batch) == batch_size
        assert n_selected == sum(r[4] for r in batch) == (int(0.3 * batch_size) // 2) * 2  # a multiple of 2 ranks
        per_rank = [sum(r[4] for r in batch if r[5] == rank) for rank in (0, 1)]
        uneven += per_rank[0] != per_rank[1]
    # momentum after the first epoch: the picks are those with the largest delta over BOTH ranks' rows
    _, rows = ledger.query(global_run / "ledger", """
        WITH ranked AS (SELECT step, selected, row_number() OVER (PARTITION BY step ORDER BY delta DESC) AS r,
                               count(*) FILTER (WHERE selected) OVER (PARTITION BY step) AS k
                        FROM scores WHERE epoch > 0 AND run = 'g')
        SELECT count(*) FROM ranked WHERE selected <> (r <= k)""")
    assert rows == [(0,)]
    assert uneven > 0   # some steps took more picks from one rank than the other: no per-rank quota


def test_picks_travel_only_between_ranks_that_need_them(global_run):
    """Rows of picked samples sent between ranks per step: point to point now (only a rank's
    surplus over its equal share moves), against the all-gather of every pick to every rank before."""
    rows = rows_by_rank(global_run / "ledger", "g")
    moved_now = moved_before = 0
    for step in {r[1] for r in rows}:
        counts = [sum(r[4] for r in rows if r[1] == step and r[5] == rank) for rank in (0, 1)]
        share = sum(counts) // 2
        if share:
            moved_now += sum(n for *_, n in distributed.moves(counts, share))
            moved_before += sum(counts)              # each rank received the other rank's picks
    print(f"picked rows sent between ranks over the run: {moved_now} now, {moved_before} by all-gather")
    assert 0 < moved_now < moved_before / 2


def test_local_scope_picks_within_each_rank(global_run):
    """Run l trained after run g in the same processes and process group, which train() left standing."""
    ledger_dir = global_run / "ledger"
    rows = duckdb.sql(f"""
        SELECT epoch, step, regexp_extract(filename, 'part-([0-9]+)-', 1) AS rank, count(*) AS n,
               count(*) FILTER (WHERE selected) AS k
        FROM read_parquet('{ledger_dir}/scores/run=l/*/*.parquet', hive_partitioning = true, filename = true)
        WHERE epoch > 0 GROUP BY ALL""").fetchall()
    both_full = [r for r in rows if r[3] == 10 and sum(o[:2] == r[:2] and o[3] == 10 for o in rows) == 2]
    assert both_full and all(k == 3 for *_, k in both_full)   # floor(0.3 * 10) from each rank's own batch
    assert ledger.Run(ledger_dir, "l").record()["config"]["local_loss"] is True
    assert ledger.Run(ledger_dir, "l").record()["world_size"] == 2
    _, losses = ledger.query(ledger_dir, "SELECT count(*) FROM steps WHERE run = 'l' AND (isnan(loss) OR loss <= 0)")
    assert losses == [(0,)]


def test_resume_under_torchrun_continues_exactly(global_run, tiny_dataset, tmp_path):
    ledger_dir = global_run / "ledger"
    proc = torchrun("interrupt", tiny_dataset, ledger_dir, tmp_path, json.dumps([{"run": "cut"}]), module=False)
    assert proc.returncode != 0 and ledger.Run(ledger_dir, "cut").record()["status"] == "stopped"
    for rank in (0, 1):   # the signal reached rank 1 alone; both stopped before epoch 1's first step
        assert f"rank {rank}: run cut stopped by SIGTERM in epoch 1" in proc.stderr, proc.stderr[-3000:]
    assert ledger.query(ledger_dir, "SELECT max(epoch) FROM scores WHERE run = 'cut'")[1] == [(0,)]
    proc = torchrun("train", tiny_dataset, "--strategy", "dissect-momentum", "--ratio", "0.3", "--epochs", "3",
                    "--batch-size", "10", "--workers", "0", "--ledger", ledger_dir, "--run", "cut", "--resume",
                    "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    columns = "epoch, step, sample_id, clipscore, hist, delta, loss, selected"
    query = f"SELECT {columns} FROM scores WHERE run = ? ORDER BY epoch, step, sample_id"
    whole, cut = ledger.query(ledger_dir, query, ["g"])[1], ledger.query(ledger_dir, query, ["cut"])[1]
    assert len(cut) == 300 and cut == whole
    assert ledger.Run(ledger_dir, "cut").record()["world_size"] == 2


@pytest.mark.parametrize("strategy", ["infobatch", "ncr"])
def test_pruning_before_loading_and_a_peer_network_run_under_torchrun(global_run, strategy):
    """infobatch: every rank draws the same epoch plan (a row for every sample once per epoch);
    ncr: both networks train under DDP and the peer is checkpointed."""
    ledger_dir = global_run / "ledger"
    _, rows = ledger.query(ledger_dir, "SELECT epoch, count(*), count(DISTINCT sample_id), count(step) FROM scores "
                                       "WHERE run = ? GROUP BY epoch ORDER BY epoch", [strategy])
    assert [r[:3] for r in rows] == [(0, 100, 100), (1, 100, 100), (2, 100, 100)]
    assert ledger.Run(ledger_dir, strategy).record()["world_size"] == 2
    loaded = [r[3] for r in rows]
    if strategy == "infobatch":      # epoch 1 pruned some before loading; epoch 0 had no scores, 2 anneals
        assert loaded[0] == loaded[2] == 100 and loaded[1] < 100
    else:
        state = torch.load(ledger_dir / "checkpoints" / strategy / "checkpoint.pt", weights_only=True)
        assert state["peer"]["optimizer"]["state"]
