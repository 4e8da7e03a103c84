-- One epoch of one run by class under one split (the ground truth when $oracle is NULL,
-- else the oracle's top half): rows, scored rows, the sum of their CLIPScores, picks.
-- $files: the epoch's scores parts; $run: the run (its dataset gives the split).
SELECT $oracle::VARCHAR AS oracle,
       c.is_clean,
       count(*) AS n,
       count(s.clipscore) AS n_scored,
       sum(s.clipscore)::DOUBLE AS sum_clipscore,
       count(*) FILTER (WHERE s.selected) AS n_selected
FROM read_parquet($files) s
JOIN clean_split($run, $oracle) c ON c.sample_id = s.sample_id
GROUP BY ALL
ORDER BY c.is_clean;
