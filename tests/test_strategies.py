import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss

from dissect.engine import strategies
from dissect.engine.strategy_settings import STRATEGY_SETTINGS


def make(name, n=10, ratio=0.3, warmup_epochs=2, momentum=0.9, seed=0, **settings):
    defaults = {"warmup_epochs": warmup_epochs, "momentum": momentum, "epochs": 8, "infobatch_anneal": 0.125,
                "scan_t_cos": 3, "scan_prune_td": 0.3, "mid_loss_spread": 0.5, "mid_loss_low_share": 0.5,
                "ncr_warmup_epoch": 1, "ncr_p_threshold": 0.5, "gsc_beta": 0.7,
                "divbs_features": "grad", "running_mean_warmup": 1, "running_mean_random_share": 0.0,
                "running_mean_pool": 0.3}
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


def losses(loss, i2t=None, t2i=None):
    """What a training step hands a strategy's trained(): the per-sample losses."""
    return SimpleNamespace(loss=loss, loss_i2t=loss if i2t is None else i2t, loss_t2i=loss if t2i is None else t2i)


def test_infobatch_prunes_the_well_learned_before_loading_and_rescales_the_kept():
    s = make("infobatch", ratio=0.5, epochs=8, infobatch_anneal=0.25)
    assert torch.equal(s.epoch_plan(0, IDS), IDS)   # nothing trained yet: nothing to prune
    assert s.select(IDS, None, None, 0).weights is None
    s.trained(IDS, torch.ones(10, dtype=torch.bool), losses(LOSSES))   # mean 1.08: ids 0, 2, 4, 6, 7, 8 below
    below = IDS[LOSSES < LOSSES.mean()]
    plan = s.epoch_plan(1, IDS)
    assert set(plan.tolist()) >= {1, 3, 5, 9}       # above the mean: always loaded
    kept = sorted(set(plan.tolist()) & set(below.tolist()))
    assert len(kept) == int(0.5 * 6) and torch.equal(plan, plan.sort().values)
    picks = s.select(plan, None, None, 1)
    assert picks.selected.all()                      # a loaded batch trains whole
    assert picks.weights.tolist() == [2.0 if i in kept else 1.0 for i in plan.tolist()]   # 1 / keep
    assert len(s.epoch_plan(5, IDS)) == 7
    assert torch.equal(s.epoch_plan(6, IDS), IDS)    # ceil(8 x 0.75) = 6: the last quarter anneals
    assert s.select(IDS, None, None, 6).weights is None   # and weighs 1
    assert make("infobatch", ratio=0.05).keep == 0.1    # the authors' floor on the kept share
    b = make("infobatch", seed=3)
    b.load_state_dict(s.state_dict())
    assert torch.equal(b.score, LOSSES)


def test_scan_drop_share_is_the_authors_cosine():
    s = make("scan", scan_t_cos=3)
    assert [s.drop_share(d) for d in range(9)] == pytest.approx([0, 0.25, 0.75, 1.0, 0, 0.25, 0.75, 1.0, 0])


def feed(s, ids, loss, batch=100, i2t=None, t2i=None):
    for start in range(0, len(ids), batch):
        rows = slice(start, start + batch)
        s.trained(ids[rows], torch.ones(len(ids[rows]), dtype=torch.bool),
                  losses(loss[rows], None if i2t is None else i2t[rows], None if t2i is None else t2i[rows]))


def test_scan_pretrains_then_collects_both_ends_of_both_directions_then_drops_a_growing_share():
    pool = torch.arange(100)
    s = make("scan", n=100, ratio=0.8, epochs=7, scan_t_cos=3, scan_prune_td=0.3)
    for epoch, mean in enumerate([4.0, 2.0, 1.8]):       # -50 %: pre-training goes on; -10 %: it ends
        assert torch.equal(s.epoch_plan(epoch, pool), pool)
        feed(s, pool, torch.full((100,), mean))
    assert torch.equal(s.epoch_plan(3, pool), pool)      # epoch 3 collects, on full data
    assert int(s.start) == 3
    # budget by hand: 300 trained of 300 so far; 0.8 x 700 - 300 = 260 to train in epochs 3-6, which
    # drop 2 rho x 100 x (0 + 0.25 + 0.75 + 1.0): rho = (4 - 2.6) / 2 / 2 = 0.35, 35 per end of a batch of 100
    assert float(s.rho) == pytest.approx(0.35)
    loss = torch.arange(100.0)
    feed(s, pool, loss, i2t=loss, t2i=loss)              # the directions agree: 0-34 and 65-99
    assert s.candidate.nonzero().squeeze(1).tolist() == list(range(35)) + list(range(65, 100))
    plans = [s.epoch_plan(epoch, pool) for epoch in (4, 5, 6)]
    assert [100 - len(p) for p in plans] == [int(70 * 0.25), int(70 * 0.75), 70]
    assert all(set(range(35, 65)) <= set(p.tolist()) for p in plans)   # never a candidate, never dropped
    trained = 400 + sum(len(p) for p in plans)
    assert trained / 700 == pytest.approx(0.8, abs=0.02)


def test_scan_fills_a_small_intersection_at_random_from_the_union():
    pool = torch.arange(20)
    s = make("scan", n=20, ratio=0.9, epochs=4, scan_prune_td=0.99)
    for epoch in (0, 1):
        s.epoch_plan(epoch, pool)
        feed(s, pool, torch.ones(20))
    s.epoch_plan(2, pool)                                # collects: pre-training ended as early as it can
    n = int(20 * float(s.rho))
    i2t, t2i = torch.arange(20.0), torch.arange(20.0).flip(0)   # the two directions disagree entirely
    feed(s, pool, (i2t + t2i) / 2, i2t=i2t, t2i=t2i)
    picked = set(s.candidate.nonzero().squeeze(1).tolist())
    ends = set(range(n)) | set(range(20 - n, 20))
    assert picked <= ends and len(picked) >= n           # n drawn from the union, for each end


@pytest.mark.parametrize("ratio", [0.7, 0.8, 0.9])
def test_scan_trains_the_requested_fraction_over_the_run(ratio):
    pool, epochs = torch.arange(400), 16
    s = make("scan", n=400, ratio=ratio, epochs=epochs)
    generator = torch.Generator().manual_seed(0)
    trained = 0
    for epoch in range(epochs):
        plan = s.epoch_plan(epoch, pool)
        trained += len(plan)
        loss = torch.rand(len(plan), generator=generator) + 4.0 / (epoch + 1) ** 2   # flattens after epoch 2
        feed(s, plan, loss, batch=50)
    assert trained / (epochs * 400) == pytest.approx(ratio, abs=0.02)


def test_scan_below_its_floor_trains_the_floor():
    pool, epochs = torch.arange(100), 8
    s = make("scan", n=100, ratio=0.3, epochs=epochs, scan_prune_td=0.99)
    trained = 0
    for epoch in range(epochs):
        plan = s.epoch_plan(epoch, pool)
        trained += len(plan)
        feed(s, plan, torch.rand(len(plan)))
    assert float(s.rho) == 0.5                           # every sample a candidate
    # epochs 0 and 1 pre-train (the first has no loss to compare with), 2 and 6 collect; 3-5 and 7
    # drop 0.25, 0.75, 1 and 0.25 of all
    assert trained == 100 * 8 - (25 + 75 + 100 + 25)


def test_mid_loss_keeps_the_middle_losses_and_prunes_more_as_it_goes():
    s = make("mid-loss", n=100, ratio=0.3, epochs=10, mid_loss_spread=0.5, mid_loss_low_share=0.5)
    fractions = [s.kept_fraction(e) for e in range(10)]
    assert fractions[0] > fractions[-1] and sum(fractions) / 10 == pytest.approx(0.3)
    loss = torch.arange(100.0)
    picked = chosen(s.select(torch.arange(100), None, loss, epoch=0))
    k = math.floor(100 * fractions[0] + 1e-9)
    low = round((100 - k) / 2)
    assert picked == set(range(low, low + k))       # the lowest and highest losses left out, half each
    late = chosen(s.select(torch.arange(100), None, loss, epoch=9))
    assert len(late) < len(picked)
    capped = make("mid-loss", ratio=0.8, mid_loss_spread=0.5)
    assert capped.kept_fraction(0) <= 1.0 + 1e-9


def test_running_mean_draws_among_the_pairs_its_running_mean_trusts_after_its_warmup():
    s = make("running-mean", n=10, ratio=0.3)               # pool 0.3: the top three of the batch
    early = chosen(s.select(IDS, SCORES, LOSSES, epoch=0))  # warm-up: random, but every visit counts
    assert len(early) == 3
    # epoch 1: ids 0, 1, 3 swing up to the top, but their means over two visits still trail 2, 6, 0's
    later = SCORES.clone()
    later[[0, 1, 3]] = 10.0
    assert chosen(s.select(IDS, later, LOSSES, epoch=1)) == {2, 6, 0}
    mean = (SCORES - SCORES.mean() + later - later.mean()) / 2
    assert torch.allclose(s.total / s.visits, mean)
    # a random share of the picks, the rest drawn at random among the trusted top of the batch
    shared = make("running-mean", n=100, ratio=0.3, running_mean_random_share=0.5, running_mean_pool=0.15)
    scores = torch.arange(100.0)
    shared.select(torch.arange(100), scores, None, epoch=0)
    picks = chosen(shared.select(torch.arange(100), scores, None, epoch=1))
    assert len(picks) == 30 and len(picks & set(range(85, 100))) == 15 and len(picks - set(range(70, 100))) > 0
    pooled = make("running-mean", n=100, ratio=0.3, running_mean_pool=0.6)
    pooled.select(torch.arange(100), scores, None, epoch=0)
    picks = chosen(pooled.select(torch.arange(100), scores, None, epoch=1))
    assert len(picks) == 30 and picks <= set(range(40, 100)) and picks != set(range(70, 100))
    resumed = make("running-mean", n=100, ratio=0.3, running_mean_pool=0.6)
    resumed.load_state_dict(pooled.state_dict())
    assert chosen(resumed.select(torch.arange(100), scores, None, epoch=2)) == \
        chosen(pooled.select(torch.arange(100), scores, None, epoch=2))


def test_the_gmm_splits_planted_losses_as_scikit_learn_would():
    generator = torch.Generator().manual_seed(0)
    clean = 0.2 + 0.05 * torch.randn(700, generator=generator)
    noisy = 0.8 + 0.05 * torch.randn(300, generator=generator)
    resp, means = strategies.two_gaussians(torch.cat([clean, noisy]))
    assert means.tolist() == pytest.approx([0.2, 0.8], abs=0.01)
    prob_clean = resp[:, means.argmin()]
    assert (prob_clean[:700] > 0.5).float().mean() > 0.99 and (prob_clean[700:] < 0.5).float().mean() > 0.99
    assert torch.allclose(resp.sum(1), torch.ones(1000))
    # the weights follow the planted 70 / 30
    assert float(resp[:, means.argmin()].mean()) == pytest.approx(0.7, abs=0.01)


def test_ncr_warms_up_at_random_then_each_network_trains_what_the_other_calls_clean():
    n = 20
    s = make("ncr", n=n, ratio=0.25, ncr_warmup_epoch=1)
    ids = torch.arange(n)
    noisy = ids >= 15
    # the model's losses: noisy pairs high; the peer's the same, but it also finds 0-4 hard
    own_loss = torch.where(noisy, 4.0, 0.5)
    peer_loss = torch.where(noisy | (ids < 5), 4.0, 0.5)
    own, peer = losses(own_loss), losses(peer_loss)
    a, b = s.select_pair(ids, own, peer, epoch=0)     # warm-up: k at random, no weights
    assert int(a.selected.sum()) == int(b.selected.sum()) == 5 and a.weights is None
    assert torch.equal(s.epoch_plan(1, ids), ids)      # the GMMs fit the losses the warm-up recorded
    assert (s.prob[0, noisy] < 0.5).all() and (s.prob[0, ~noisy] > 0.5).all()
    assert (s.prob[1, :5] < 0.5).all() and (s.prob[1, 5:15] > 0.5).all()
    a, b = s.select_pair(ids, own, peer, epoch=1)
    assert set(a.selected.nonzero().squeeze(1).tolist()) <= set(range(5, 15))   # the model: the peer's clean
    assert not (b.selected & noisy).any()                                      # the peer: the model's clean
    prob, pred = s.prob[1, 5], strategies.positive_probability(torch.tensor(0.5), torch.tensor(0.5))
    assert float(a.weights[5]) == pytest.approx(float(prob + (1 - prob) * pred))   # the rectified label
    b_state = make("ncr", n=n, seed=4)
    b_state.load_state_dict(s.state_dict())
    assert torch.equal(b_state.prob, s.prob)


def test_gsc_targets_follow_the_structure_consistency_and_the_predictions():
    n = 8
    s = make("gsc", n=n, ratio=0.5, gsc_beta=0.7)
    ids = torch.arange(n)
    e = torch.eye(4)
    # images in four directions, twice; 6 and 7 swap captions, which also bends the geometry of 2
    # and 3 (their images' twins); 0, 1, 4, 5 keep it
    image = torch.cat([e, e])[:n]
    text = image.clone()
    text[[6, 7]] = text[[7, 6]]
    features = strategies.Features(F.normalize(image + 0.1, dim=1), F.normalize(text + 0.1, dim=1),
                                   torch.tensor(10.0))
    first = s.select(ids, None, None, 0, features)
    assert int(first.selected.sum()) == 4 and torch.equal(first.weights, torch.ones(n))   # targets start at 1
    topo, pred = s.state[0].clone(), s.state[1].clone()
    assert topo[[6, 7]].max() < topo[[0, 1, 4, 5]].min()
    s.epoch_plan(1, ids)
    topo_target, pred_target, target = s.state[2], s.state[3], s.state[4]
    assert torch.allclose(pred_target, 0.7 * pred + 0.3)
    assert (topo_target[[6, 7]] < 0.5).all() and (topo_target[[0, 1, 4, 5]] > 0.5).all()
    assert torch.equal(target, torch.minimum(topo_target, pred_target))
    picks = s.select(ids, None, None, 1, features)
    assert not picks.selected[[6, 7]].any() and torch.equal(picks.weights, target)


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


def test_every_declared_strategy_is_registered_and_nothing_else():
    assert set(strategies.REGISTRY) == set(STRATEGY_SETTINGS)
