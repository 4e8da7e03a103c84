import math

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from dissect.engine import strategies


def make(name, n=10, ratio=0.3, warmup_epochs=2, momentum=0.9, seed=0, **settings):
    defaults = {"warmup_epochs": warmup_epochs, "momentum": momentum, "epochs": 8, "infobatch_anneal": 0.125,
                "infobatch_max_prune": 0.9, "scan_spread": 0.5, "scan_low_share": 0.5, "divbs_features": "grad"}
    return strategies.create(name, n_samples=n, ratio=ratio, seed=seed, **{**defaults, **settings})


def chosen(selection):
    return set(selection.selected.nonzero().squeeze(1).tolist())


IDS = torch.arange(10)
SCORES = torch.tensor([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 0.0])
LOSSES = torch.tensor([0.5, 2.0, 0.1, 1.5, 0.3, 1.8, 0.2, 1.0, 0.4, 3.0])


@pytest.mark.parametrize("ratio,batch,k", [(0.3, 10, 3), (0.5, 7, 3), (0.3, 128, 38), (1.0, 5, 5), (0.01, 10, 1)])
def test_budget_is_floor_of_ratio_times_batch(ratio, batch, k):
    assert strategies.budget(ratio, batch) == k


def test_unknown_strategy_and_bad_ratio_are_refused():
    with pytest.raises(strategies.UnknownStrategy, match="choose one of"):
        make("nope")
    with pytest.raises(ValueError, match="outside"):
        make("random", ratio=1.5)
    with pytest.raises(ValueError, match="outside"):
        make("random", ratio=0.0)


def test_full_selects_every_sample_and_keeps_no_history():
    s = make("full").select(IDS, SCORES, LOSSES, epoch=0)
    assert s.selected.all() and s.hist is None


def test_loss_and_score_strategies_pick_hand_computed_samples():
    assert chosen(make("small-loss").select(IDS, SCORES, LOSSES, 0)) == {2, 6, 4}
    assert chosen(make("big-loss").select(IDS, SCORES, LOSSES, 0)) == {9, 1, 5}
    assert chosen(make("clipscore").select(IDS, SCORES, LOSSES, 0)) == {2, 6, 4}


def test_random_picks_k_reproducibly_by_seed():
    a = [chosen(make("random", seed=7).select(IDS, SCORES, LOSSES, 0)) for _ in range(2)]
    assert a[0] == a[1] and len(a[0]) == 3
    s = make("random", seed=7)
    picks = [chosen(s.select(IDS, SCORES, LOSSES, 0)) for _ in range(20)]
    assert len({frozenset(p) for p in picks}) > 1  # the generator advances


def test_warmup_overwrites_history_during_warmup_then_takes_top_delta():
    s = make("dissect-warmup", warmup_epochs=2)
    first = s.select(IDS, SCORES, LOSSES, epoch=0)
    assert torch.isnan(first.hist).all()            # a first visit has no history
    assert len(chosen(first)) == 3                  # random at rate r
    second = s.select(IDS, SCORES + 1, LOSSES, epoch=1)
    assert torch.equal(second.hist, SCORES)         # hist = score at the last warm-up visit
    assert torch.equal(s.hist, SCORES + 1)
    # After warm-up: delta = hist - curr = (SCORES + 1) - curr; curr drops most for ids 9, 3, 5.
    curr = SCORES + 1 - torch.tensor([0.0, 0.1, 0.2, 3.0, 0.3, 2.0, 0.4, 0.5, 0.6, 4.0])
    after = s.select(IDS, curr, LOSSES, epoch=2)
    assert chosen(after) == {9, 3, 5}
    assert torch.equal(after.hist, SCORES + 1)
    assert torch.equal(s.hist, SCORES + 1)          # frozen after warm-up
    # Samples visited in other batches keep their own history.
    s.select(torch.tensor([0, 1]), torch.tensor([100.0, 100.0]), LOSSES[:2], epoch=3)
    assert s.hist[0] == SCORES[0] + 1


def test_momentum_takes_delta_before_updating_history():
    s = make("dissect-momentum", momentum=0.9)
    s.select(IDS, SCORES, LOSSES, epoch=0)           # first visit: hist starts at the score
    assert torch.equal(s.hist, SCORES)
    curr = SCORES - torch.tensor([0.0, 5.0, 0.0, 0.0, 4.0, 0.0, 0.0, 6.0, 0.0, 0.0])
    sel = s.select(IDS, curr, LOSSES, epoch=1)
    assert torch.equal(sel.hist, SCORES)             # delta used the hist from before the update
    assert chosen(sel) == {7, 1, 4}
    assert torch.allclose(s.hist, 0.9 * SCORES + 0.1 * curr)


def test_first_visits_get_their_share_of_the_budget_at_random():
    s = make("dissect-momentum", n=20, ratio=0.5)
    s.select(torch.arange(5), SCORES[:5], LOSSES[:5], epoch=0)   # ids 0..4 now have history
    ids = torch.arange(10)                                     # 5 seen before, 5 new
    curr = torch.tensor([5.0, 0.0, 9.0, 3.0, 7.0, 1, 1, 1, 1, 1])  # delta of 0..4: 0, 1, 0, 0, 0
    sel = s.select(ids, curr, LOSSES, epoch=1)
    picked = chosen(sel)
    k = 5
    assert len(picked) == k
    old, new = picked & set(range(5)), picked & set(range(5, 10))
    assert len(new) == round(k * 5 / 10) and 1 in old   # the largest delta among the seen ones
    assert len(old) == k - len(new)


def test_state_dict_round_trip_continues_identically():
    a = make("dissect-momentum")
    a.select(IDS, SCORES, LOSSES, 0)
    b = make("dissect-momentum", seed=99)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.hist, b.hist)
    assert chosen(a.select(IDS, SCORES * 0.5, LOSSES, 1)) == chosen(b.select(IDS, SCORES * 0.5, LOSSES, 1))
    r1, r2 = make("random"), make("random", seed=5)
    r2.load_state_dict(r1.state_dict())
    assert chosen(r1.select(IDS, SCORES, LOSSES, 0)) == chosen(r2.select(IDS, SCORES, LOSSES, 0))


def test_history_state_is_a_tensor_of_size_n():
    s = make("dissect-warmup", n=1000)
    assert s.hist.shape == (1000,) and math.isnan(s.hist[999])


def test_oracle_clean_picks_only_clean_samples():
    clean = torch.tensor([True, False] * 5)
    s = strategies.create("oracle-clean", n_samples=10, ratio=0.3, seed=0, warmup_epochs=1, momentum=0.9,
                          clean=clean)
    picked = chosen(s.select(IDS, SCORES, LOSSES, 0))
    assert len(picked) == 3 and all(i % 2 == 0 for i in picked)
    few = s.select(torch.tensor([1, 3, 5, 0]), SCORES[:4], LOSSES[:4], 0)   # one clean sample in the batch
    assert chosen(few) == {3}
    with pytest.raises(ValueError, match="ground-truth"):
        make("oracle-clean")


def test_infobatch_prunes_below_the_mean_at_random_and_reweighs_the_rest():
    s = make("infobatch", ratio=0.5, epochs=8, infobatch_anneal=0.25)
    first = s.select(IDS, None, None, epoch=0)
    assert first.selected.all()                      # nothing trained yet: nothing to prune
    s.trained(IDS, torch.ones(10, dtype=torch.bool), LOSSES)   # mean 1.08: ids 0, 2, 4, 6, 7, 8 below
    below = LOSSES < LOSSES.mean()
    picks = s.select(IDS, None, None, epoch=1)
    p = min(0.9, 0.5 * 10 / 6)                       # (1 - r) B / n_below, capped
    assert picks.selected[~below].all()              # above the mean: always trained
    assert torch.allclose(picks.weights[below], torch.full((6,), 1 / (1 - p)))
    assert torch.equal(picks.weights[~below], torch.ones(4))
    kept = [int(s.select(IDS, None, None, epoch=1).selected[below].sum()) for _ in range(200)]
    assert abs(sum(kept) / 200 - 6 * (1 - p)) < 0.3  # each below-mean sample kept with probability 1 - p
    assert s.select(IDS, None, None, epoch=6).selected.all()   # the last quarter anneals: no pruning
    assert s.select(IDS, None, None, epoch=6).weights is None
    b = make("infobatch", seed=3)
    b.load_state_dict(s.state_dict())
    assert torch.equal(b.score, LOSSES)


def test_scan_keeps_the_middle_losses_and_prunes_more_as_it_goes():
    s = make("scan", n=100, ratio=0.3, epochs=10, scan_spread=0.5, scan_low_share=0.5)
    fractions = [s.kept_fraction(e) for e in range(10)]
    assert fractions[0] > fractions[-1] and sum(fractions) / 10 == pytest.approx(0.3)
    loss = torch.arange(100.0)
    picked = chosen(s.select(torch.arange(100), None, loss, epoch=0))
    k = math.floor(100 * fractions[0] + 1e-9)
    low = round((100 - k) / 2)
    assert picked == set(range(low, low + k))       # the lowest and highest losses pruned, half each
    late = chosen(s.select(torch.arange(100), None, loss, epoch=9))
    assert len(late) < len(picked)
    capped = make("scan", ratio=0.8, scan_spread=0.5)
    assert capped.kept_fraction(0) <= 1.0 + 1e-9


def test_divbs_picks_orthogonal_representatives():
    # two copies of one direction and two others: once a copy is picked the other is redundant
    image = torch.tensor([[1.0, 0, 0], [1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    features = strategies.Features(image, torch.zeros(4, 3), torch.tensor(10.0))
    for seed in range(10):
        s = make("divbs", n=4, ratio=0.75, seed=seed, divbs_features="embedding")
        picked = chosen(s.select(torch.arange(4), SCORES[:4], LOSSES[:4], 0, features))
        assert len(picked) == 3 and {2, 3} <= picked and len(picked & {0, 1}) == 1
    # the gradient features are the InfoNCE gradient with respect to the embeddings
    torch.manual_seed(0)
    image, text = F.normalize(torch.randn(5, 4), dim=1), F.normalize(torch.randn(5, 4), dim=1)
    image.requires_grad_(True)
    text.requires_grad_(True)
    ClipLoss()(image, text, torch.tensor(7.0)).backward()
    g = make("divbs", n=5).gradient_features(strategies.Features(image.detach(), text.detach(), torch.tensor(7.0)))
    assert torch.allclose(g, torch.cat([image.grad, text.grad], 1), atol=1e-6)


def test_weighted_loss_with_unit_weights_is_clip_loss():
    from dissect.engine.scores import weighted_clip_loss

    torch.manual_seed(1)
    image, text = F.normalize(torch.randn(6, 4), dim=1), F.normalize(torch.randn(6, 4), dim=1)
    loss_fn = ClipLoss()
    scale = torch.tensor(5.0)
    plain = loss_fn(image, text, scale)
    assert torch.allclose(weighted_clip_loss(loss_fn, image, text, scale, torch.ones(6)), plain)
    doubled = weighted_clip_loss(loss_fn, image, text, scale, torch.tensor([2.0, 1, 1, 1, 1, 1]))
    assert doubled > plain
