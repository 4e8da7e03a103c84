-- Whether every epoch of the runs `runs` has its summary under the split `oracle` (NULL: the
-- ground truth): class_stats then reads the summaries instead of every score.
SELECT (SELECT count(DISTINCT (run, epoch)) FROM scores WHERE list_contains(getvariable('runs'), run))
     = (SELECT count(DISTINCT (run, epoch)) FROM summaries
        WHERE list_contains(getvariable('runs'), run) AND oracle IS NOT DISTINCT FROM getvariable('oracle'));
