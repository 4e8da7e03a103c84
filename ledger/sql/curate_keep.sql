-- The kept rows of a curation rule: its scores ranked (highest first, ties by sample id),
-- the top keep_n (variable), with the manifest's key, uid and caption, and how many samples the rule scored.
-- The rule (one file of curate/) is pasted in as the CTE `rule`.
WITH rule AS (
{rule}
)
SELECT m.sample_id, m.key, m.uid, m.caption, r.score,
       row_number() OVER (ORDER BY r.score DESC, m.sample_id) AS rank,
       count(*) OVER () AS n_scored
FROM rule r
JOIN samples m ON m.sample_id = r.sample_id AND m.dataset = getvariable('dataset')
WHERE r.score IS NOT NULL
QUALIFY rank <= getvariable('keep_n')
ORDER BY rank;
