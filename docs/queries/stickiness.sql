-- How sticky is a strategy's selection? The chance a sample is picked at this visit
-- given it was picked (p_again) or left out (p_new) at its previous visit, from epoch
-- `from_epoch` on, for the runs matching `pattern`. Random selection at ratio r gives r for both.
WITH visits AS (
    SELECT run, epoch, selected,
           lag(selected) OVER (PARTITION BY run, sample_id ORDER BY epoch) AS picked_last_visit
    FROM scores
    WHERE run LIKE getvariable('pattern')
)
SELECT run,
       round(avg(selected::DOUBLE) FILTER (WHERE picked_last_visit), 3) AS p_again,
       round(avg(selected::DOUBLE) FILTER (WHERE NOT picked_last_visit), 3) AS p_new
FROM visits
WHERE epoch >= getvariable('from_epoch')
GROUP BY run
ORDER BY run;
