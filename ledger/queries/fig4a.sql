-- Figure 4a: CLIPScore distribution of the selected samples against all samples,
-- at chosen epochs (training stages: by default the last warm-up epoch, the first after it, the last).
-- Samples without a score that epoch (no scoring pass, not trained) are left out.
-- Variables (SET VARIABLE name = value in the duckdb shell): run: the run; epochs: the epochs to show; bins of 2 points.
SELECT epoch,
       subset,
       floor(clipscore / 2) * 2 AS bin,
       count(*) AS n
FROM (
    SELECT epoch, clipscore, 'all' AS subset FROM scores WHERE run = getvariable('run')
    UNION ALL
    SELECT epoch, clipscore, 'selected' AS subset FROM scores WHERE run = getvariable('run') AND selected
)
WHERE list_contains(getvariable('epochs'), epoch) AND clipscore IS NOT NULL
GROUP BY ALL
ORDER BY epoch, subset, bin;
