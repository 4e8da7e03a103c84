-- The two ends of a curation rule's ranking (curate_ranked.sql, pasted in above): the
-- keep_n (variable) pairs it keeps first and the keep_n it drops first, with what the manifest knows.
{ranked}
SELECT CASE WHEN rank <= getvariable('keep_n') THEN 'kept first' ELSE 'dropped first' END AS "end",
       sample_id, key, caption, is_noisy, score, rank
FROM ranked
WHERE rank <= getvariable('keep_n') OR rank > n_scored - getvariable('keep_n')
ORDER BY "end" DESC, CASE WHEN "end" = 'kept first' THEN rank ELSE -rank END;
