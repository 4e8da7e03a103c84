-- Samples/s of each run in its last epoch (dissect-warmup's first after its warm-up), the loader's
-- wait included, and the scoring pass's share of the step.
SELECT run,
       round(sum(batch_size) / sum(t_data + t_score + t_train), 0) AS samples_per_s,
       round(sum(t_score) / sum(t_score + t_train), 3) AS scoring_share,
       round(sum(t_data) / sum(t_data + t_score + t_train), 3) AS data_wait_share
FROM steps
WHERE epoch = 1
GROUP BY run
ORDER BY run DESC;
