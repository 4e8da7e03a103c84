-- A curation rule's scores ranked (highest first, ties by sample id) with what the manifest
-- knows of each pair and how many samples the rule scored: the CTE `ranked` that
-- curate_keep.sql and curate_ends.sql read. The rule (one file of curate/) is pasted in as the CTE `rule`.
WITH rule AS (
{rule}
), ranked AS (
    SELECT m.sample_id, m.key, m.uid, m.caption, m.is_noisy, r.score,
           row_number() OVER (ORDER BY r.score DESC, m.sample_id) AS rank,
           count(*) OVER () AS n_scored
    FROM rule r
    JOIN samples m ON m.sample_id = r.sample_id AND m.dataset = getvariable('dataset')
    WHERE r.score IS NOT NULL
)
