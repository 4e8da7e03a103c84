-- The two ends of a curation rule's ranking (highest first, ties by sample id, as curate_keep.sql):
-- the keep_n (variable) pairs it keeps first and the keep_n it drops first, with what the manifest knows.
-- The rule (one file of curate/) is pasted in as the CTE `rule`.
WITH rule AS (
{rule}
), ranked AS (
    SELECT m.sample_id, m.key, m.caption, m.is_noisy, r.score,
           row_number() OVER (ORDER BY r.score DESC, m.sample_id) AS rank,
           count(*) OVER () AS n_scored
    FROM rule r
    JOIN samples m ON m.sample_id = r.sample_id AND m.dataset = getvariable('dataset')
    WHERE r.score IS NOT NULL
)
SELECT CASE WHEN rank <= getvariable('keep_n') THEN 'kept first' ELSE 'dropped first' END AS "end",
       sample_id, key, caption, is_noisy, score, rank
FROM ranked
WHERE rank <= getvariable('keep_n') OR rank > n_scored - getvariable('keep_n')
ORDER BY "end" DESC, CASE WHEN "end" = 'kept first' THEN rank ELSE -rank END;
