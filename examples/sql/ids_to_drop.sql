-- The ids to drop: the `fraction` of a dataset's train pairs with the lowest mean centred
-- CLIPScore over a run's epochs (the mean-clipscore curation rule's score, read off the run's
-- history without an oracle), with the key and uid to join back to the source.
-- `dissect curate --by mean-clipscore` writes the kept side as a subset file.
--   dissect query --file examples/sql/ids_to_drop.sql --param run=RUN --param fraction=0.2 --ledger L
WITH centred AS (
    SELECT sample_id, centred(clipscore, run, epoch) AS centred_clipscore
    FROM scores
    WHERE run = getvariable('run') AND clipscore IS NOT NULL
),
per_sample AS (
    SELECT sample_id, avg(centred_clipscore) AS score FROM centred GROUP BY sample_id
)
SELECT p.sample_id, m.key, m.uid, round(p.score, 3) AS mean_centred_clipscore
FROM per_sample p
JOIN runs r ON r.name = getvariable('run')
JOIN samples m ON m.dataset = r.dataset AND m.sample_id = p.sample_id
QUALIFY percent_rank() OVER (ORDER BY p.score) < getvariable('fraction')::DOUBLE
ORDER BY p.score;
