-- Figure 4a: CLIPScore distribution of the selected samples against all samples,
-- at chosen epochs (training stages).
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
WHERE list_contains(getvariable('epochs'), epoch)
GROUP BY ALL
ORDER BY epoch, subset, bin;
