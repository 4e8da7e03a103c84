-- The kept rows of a curation rule: the top keep_n (variable) of its ranking (curate_ranked.sql,
-- pasted in above), with the manifest's key, uid and caption, and how many samples the rule scored.
{ranked}
SELECT sample_id, key, uid, caption, score, rank, n_scored
FROM ranked
WHERE rank <= getvariable('keep_n')
ORDER BY rank;
