-- Forgetting score (Toneva et al., ICLR 2019) over a run's epochs: the number of times a pair
-- goes from learned to not learned between consecutive epochs where it was scored ("learned":
-- scores.correct, its image's nearest text in its batch is its caption and back). A pair never
-- learned counts as the most forgettable (the run's epochs). Keep the most forgettable.
-- Variables: run.
WITH history AS (
    SELECT sample_id, correct, lag(correct) OVER (PARTITION BY sample_id ORDER BY epoch) AS before
    FROM scores
    WHERE run = getvariable('run') AND correct IS NOT NULL
)
SELECT sample_id,
       CASE WHEN bool_or(correct) THEN count(*) FILTER (WHERE before AND NOT correct)
            ELSE (SELECT epochs FROM runs WHERE name = getvariable('run')) END::DOUBLE AS score
FROM history
GROUP BY sample_id;
