-- Mean time of a step per run, on full batches after the first epoch (which pays for
-- start-up): the compute part (scoring pass + training pass) and, as a user sees it,
-- with the wait for the loader's next batch; each as a ratio to the run named by the variable `full`.
WITH per_run AS (
    SELECT run,
           avg(t_score) AS score_s,
           avg(t_train) AS train_s,
           avg(t_score + t_train) AS step_s,
           avg(t_data) AS data_s,
           avg(t_data + t_score + t_train) AS wall_s,
           count(*) AS steps
    FROM steps
    WHERE epoch > 0 AND batch_size = (SELECT max(batch_size) FROM steps)
    GROUP BY run
)
SELECT p.run,
       round(1000 * p.score_s, 1) AS score_ms,
       round(1000 * p.train_s, 1) AS train_ms,
       round(1000 * p.step_s, 1) AS step_ms,
       round(p.step_s / f.step_s, 3) AS ratio_to_full,
       round(1000 * p.data_s, 1) AS data_wait_ms,
       round(p.wall_s / f.wall_s, 3) AS ratio_with_data,
       p.steps
FROM per_run p, per_run f
WHERE f.run = getvariable('full')
ORDER BY p.step_s;
