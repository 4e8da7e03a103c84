-- How well each score separates clean (positive) from noisy pairs, per run and epoch:
-- AUROC of delta (what DISSect ranks by), of the current CLIPScore, and of minus the
-- loss (what small-loss ranks by). 0.5: no separation; below 0.5: the wrong way round.
-- In the duckdb shell: SET VARIABLE pattern = 'shapes-shuffle-dissect%';
WITH visits AS (
    SELECT s.run, s.epoch, s.run || '/' || s.epoch AS grp, NOT m.is_noisy AS clean,
           s.delta, s.clipscore, -s.loss AS neg_loss
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run LIKE getvariable('pattern')
),
by_delta AS (
    SELECT run, epoch, auroc(r, clean) AS auroc_delta
    FROM (SELECT run, epoch, clean, mid_rank(delta, grp) AS r FROM visits WHERE delta IS NOT NULL)
    GROUP BY ALL
),
by_score AS (
    SELECT run, epoch, auroc(rs, clean) AS auroc_clipscore, auroc(rl, clean) AS auroc_neg_loss
    FROM (SELECT run, epoch, clean, mid_rank(clipscore, grp) AS rs, mid_rank(neg_loss, grp) AS rl FROM visits)
    GROUP BY ALL
)
SELECT s.run, s.epoch,
       round(d.auroc_delta, 3) AS auroc_delta,
       round(s.auroc_clipscore, 3) AS auroc_clipscore,
       round(s.auroc_neg_loss, 3) AS auroc_neg_loss
FROM by_score s
LEFT JOIN by_delta d USING (run, epoch)
ORDER BY s.run, s.epoch;
