-- Forgetting score (Toneva et al., ICLR 2019) over a run's epochs: the number of times a pair
-- goes from learned to not learned between consecutive epochs where it was scored ("learned":
-- scores.correct, its image's nearest text in its batch is its caption and back). A pair never
-- learned counts as the most forgettable (the number of epochs read). Keep the most forgettable.
-- Variables: run, until_epoch.
WITH visits AS (
    SELECT sample_id, epoch, correct, lag(correct) OVER (PARTITION BY sample_id ORDER BY epoch) AS before
    FROM history(getvariable('run'))
    WHERE correct IS NOT NULL
)
SELECT sample_id,
       CASE WHEN bool_or(correct) THEN count(*) FILTER (WHERE before AND NOT correct)
            ELSE (SELECT max(epoch) + 1 FROM visits) END::DOUBLE AS score
FROM visits
GROUP BY sample_id;
