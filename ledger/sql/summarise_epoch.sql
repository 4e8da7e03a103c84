-- One epoch of one run by class under one split (the ground truth when `oracle` is NULL,
-- else the oracle's top half): rows, scored rows, the sum of their CLIPScores, picks, and
-- the sums of the class's mid-ranks of CLIPScore and of delta (for their AUROCs).
-- Variables: files, the epoch's scores parts; run (its dataset gives the split); oracle.
WITH rows AS (
    SELECT s.clipscore, s.hist - s.clipscore AS delta, s.selected, c.is_clean
    FROM read_parquet(getvariable('files')) s
    JOIN clean_split(getvariable('run'), getvariable('oracle')) c ON c.sample_id = s.sample_id
)
SELECT getvariable('oracle')::VARCHAR AS oracle,
       is_clean,
       count(*) AS n,
       count(clipscore) AS n_scored,
       sum(clipscore)::DOUBLE AS sum_clipscore,
       count(*) FILTER (WHERE selected) AS n_selected,
       count(delta) AS n_delta,
       sum(clipscore_rank)::DOUBLE AS rank_sum_clipscore,
       sum(delta_rank)::DOUBLE AS rank_sum_delta
FROM (SELECT *,
             CASE WHEN clipscore IS NOT NULL THEN mid_rank(clipscore, clipscore IS NULL) END AS clipscore_rank,
             CASE WHEN delta IS NOT NULL THEN mid_rank(delta, delta IS NULL) END AS delta_rank
      FROM rows)
GROUP BY ALL
ORDER BY is_clean;
