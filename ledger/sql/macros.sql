-- The common moves of the analyses, as DuckDB macros over the ledger's views.

-- A value minus its mean over the same run and epoch (Fig. 3c: "CLIPScore minus the epoch mean").
CREATE OR REPLACE MACRO centred(x, run_col, epoch_col) AS
    x - avg(x) OVER (PARTITION BY run_col, epoch_col);

-- Every score of the runs whose names match run_pattern (LIKE), centred per run and epoch,
-- beside the dataset's ground truth: where the AUROC-by-epoch analyses start.
CREATE OR REPLACE MACRO centred_truth(run_pattern) AS TABLE
    SELECT s.run, s.epoch, s.sample_id, NOT m.is_noisy AS is_clean, centred(s.clipscore, s.run, s.epoch) AS c
    FROM scores s
    JOIN runs r ON r.name = s.run
    JOIN samples m ON m.dataset = r.dataset AND m.sample_id = s.sample_id
    WHERE s.run LIKE run_pattern;

-- The scores of a run a curation rule reads: every epoch, or those up to the variable
-- until_epoch where it is set (`dissect curate --until-epoch E`: as if the run had stopped at E).
CREATE OR REPLACE MACRO history(run_name) AS TABLE
    SELECT * FROM scores
    WHERE run = run_name AND epoch <= coalesce(getvariable('until_epoch'), epoch);

-- Which train samples of a run's dataset count as clean: the oracle's top 50 % of
-- CLIPScore when oracle_name is given, else the dataset's ground truth (NOT is_noisy).
CREATE OR REPLACE MACRO clean_split(run_name, oracle_name) AS TABLE
    SELECT m.sample_id, NOT m.is_noisy AS is_clean
    FROM samples m
    JOIN runs r ON r.dataset = m.dataset
    WHERE r.name = run_name AND oracle_name IS NULL AND m.split = 'train' AND m.is_noisy IS NOT NULL
    UNION ALL
    SELECT o.sample_id, ntile(2) OVER (ORDER BY o.clipscore, o.sample_id) = 2 AS is_clean
    FROM oracle o
    JOIN runs r ON r.dataset = o.dataset
    JOIN samples m ON m.dataset = o.dataset AND m.sample_id = o.sample_id
    WHERE r.name = run_name AND o.name = oracle_name AND m.split = 'train';

-- The same split as a bitmap over the dataset's dense sample ids (bit i: sample i is
-- clean). Looking a sample up in it is far cheaper than joining clean_split to every
-- epoch's rows of a large run. Samples outside the split (the test split) read as 0.
CREATE OR REPLACE MACRO clean_bits(run_name, oracle_name) AS (
    SELECT string_agg(CASE WHEN c.is_clean THEN '1' ELSE '0' END, '' ORDER BY m.sample_id)::BIT
    FROM samples m
    JOIN runs r ON r.dataset = m.dataset
    LEFT JOIN clean_split(run_name, oracle_name) c ON c.sample_id = m.sample_id
    WHERE r.name = run_name
);

CREATE OR REPLACE MACRO is_clean(bits, id) AS
    get_bit(bits, id::INTEGER) = 1;

-- Per run and class at one epoch: what class_stats gives, and the sums of the class's
-- mid-ranks of CLIPScore and of delta among the epoch's rows that have one (the AUROCs of
-- Fig. 4d), from the summaries or (see class_stats) from the scores.
CREATE OR REPLACE MACRO class_ranks(run_names, oracle_name, at_epoch) AS TABLE
    SELECT run, is_clean, n_selected, n_scored, n_delta, rank_sum_clipscore, rank_sum_delta
    FROM summaries
    WHERE coalesce(getvariable('summarised'), false)
      AND list_contains(run_names, run) AND oracle IS NOT DISTINCT FROM oracle_name AND epoch = at_epoch
    UNION ALL
    SELECT run, is_clean, count(*) FILTER (WHERE selected), count(clipscore), count(delta),
           sum(clipscore_rank), sum(delta_rank)
    FROM (SELECT s.run, s.selected, s.clipscore, s.delta, c.is_clean,
                 CASE WHEN s.clipscore IS NOT NULL THEN mid_rank(s.clipscore, (s.run, s.clipscore IS NULL)) END
                     AS clipscore_rank,
                 CASE WHEN s.delta IS NOT NULL THEN mid_rank(s.delta, (s.run, s.delta IS NULL)) END AS delta_rank
          FROM scores s
          JOIN clean_split(run_names[1], oracle_name) c ON c.sample_id = s.sample_id
          WHERE NOT coalesce(getvariable('summarised'), false)
            AND list_contains(run_names, s.run) AND s.epoch = at_epoch)
    GROUP BY ALL;

-- class_stats from the scores themselves (when `summarised` is not true), the split looked up
-- in clean_bits.
CREATE OR REPLACE MACRO scored_class_stats(run_names, oracle_name) AS TABLE
    SELECT s.run, s.epoch, is_clean(b.bits, s.sample_id) AS is_clean, count(*) AS n, count(s.clipscore) AS n_scored,
           sum(s.clipscore)::DOUBLE AS sum_clipscore, count(*) FILTER (WHERE s.selected) AS n_selected
    FROM scores s, (SELECT clean_bits(run_names[1], oracle_name) AS bits) b
    WHERE NOT coalesce(getvariable('summarised'), false) AND list_contains(run_names, s.run)
    GROUP BY ALL;

-- Per run, epoch and class (clean / noisy under the split of clean_split): rows, scored
-- rows, the sum of their CLIPScores and picks. From the summaries written with each epoch
-- when the variable `summarised` says every epoch of the runs has them under this split
-- (`dissect report` checks), else from the scores themselves.
CREATE OR REPLACE MACRO class_stats(run_names, oracle_name) AS TABLE
    SELECT run, epoch, is_clean, n, n_scored, sum_clipscore, n_selected
    FROM summaries
    WHERE coalesce(getvariable('summarised'), false)
      AND list_contains(run_names, run) AND oracle IS NOT DISTINCT FROM oracle_name
    UNION ALL
    SELECT * FROM scored_class_stats(run_names, oracle_name);

-- TP accuracy: the fraction of the selected samples that are clean.
CREATE OR REPLACE MACRO tp_accuracy(selected, is_clean) AS
    avg(is_clean::DOUBLE) FILTER (WHERE selected);

-- TP accuracy from per-class counts (class_stats' n_selected, is_clean) of the rows where
-- COUNTED holds. An aggregate.
CREATE OR REPLACE MACRO tp_accuracy_of_counts(n_selected, is_clean, counted) AS
    sum(n_selected * is_clean::INTEGER) FILTER (WHERE counted) / sum(n_selected) FILTER (WHERE counted);

-- Mid-rank of a score within a group (ties share the mean of their ranks): the mean of a
-- tie's first rank and its last (cume_dist times the group's size), from one sort.
CREATE OR REPLACE MACRO mid_rank(score, grp) AS
    (rank() OVER (PARTITION BY grp ORDER BY score)
        + round(cume_dist() OVER (PARTITION BY grp ORDER BY score) * count(*) OVER (PARTITION BY grp))) / 2.0;

-- AUROC from the sum of the positives' mid-ranks (Mann-Whitney): the probability that a
-- positive scores above a negative, ties counting a half. NULL when a class is empty.
CREATE OR REPLACE MACRO auroc_of_rank_sum(rank_sum, n_positive, n_negative) AS
    (rank_sum - n_positive * (n_positive + 1) / 2.0) / nullif(n_positive * n_negative, 0);

-- The same over rows of mid-ranks.
CREATE OR REPLACE MACRO auroc(rank_col, positive) AS
    auroc_of_rank_sum(sum(rank_col) FILTER (WHERE positive), count(*) FILTER (WHERE positive),
                      count(*) FILTER (WHERE NOT positive));

-- The last value of every eval metric of each run.
CREATE OR REPLACE MACRO final_metrics() AS TABLE
    SELECT run, metric, arg_max(value, step) AS value, max(step) AS step
    FROM evals
    GROUP BY run, metric;

-- The last value of one eval metric of each run.
CREATE OR REPLACE MACRO final_metric(metric_name) AS TABLE
    SELECT run, value, step FROM final_metrics() WHERE metric = metric_name;

-- What a run's result depends on besides its strategy, ratio and seed: its config less the
-- flags that only name, place or watch it, and less the hyper-parameters of strategies
-- it does not run. Runs whose settings are equal are seeds of one experiment. A run record
-- keeps these as `settings` (TrainConfig.recorded_settings); this reads them out of the config
-- of the records written before it did.
CREATE OR REPLACE MACRO run_setting(config) AS
    json_merge_patch(config, json_object(
        'data', NULL, 'ledger', NULL, 'run', NULL, 'out', NULL, 'seed', NULL, 'strategy', NULL, 'ratio', NULL,
        'device', NULL, 'workers', NULL, 'resume', NULL, 'quiet', NULL, 'eval_every', NULL, 'subset', NULL,
        'warmup_epochs', CASE WHEN config->>'strategy' = 'dissect-warmup' THEN config->'warmup_epochs' END,
        'momentum', CASE WHEN config->>'strategy' = 'dissect-momentum' THEN config->'momentum' END,
        'infobatch_anneal', CASE WHEN config->>'strategy' = 'infobatch' THEN config->'infobatch_anneal' END,
        'scan_t_cos', CASE WHEN config->>'strategy' = 'scan' THEN config->'scan_t_cos' END,
        'scan_prune_td', CASE WHEN config->>'strategy' = 'scan' THEN config->'scan_prune_td' END,
        'ncr_warmup_epoch', CASE WHEN config->>'strategy' = 'ncr' THEN config->'ncr_warmup_epoch' END,
        'ncr_p_threshold', CASE WHEN config->>'strategy' = 'ncr' THEN config->'ncr_p_threshold' END,
        'gsc_beta', CASE WHEN config->>'strategy' = 'gsc' THEN config->'gsc_beta' END,
        'mid_loss_spread', CASE WHEN config->>'strategy' = 'mid-loss' THEN config->'mid_loss_spread' END,
        'mid_loss_low_share', CASE WHEN config->>'strategy' = 'mid-loss' THEN config->'mid_loss_low_share' END,
        -- flags of the per-batch infobatch and scan of ledgers before they were the authors':
        -- kept on those runs, so that they are never averaged with today's
        'infobatch_max_prune', CASE WHEN config->>'strategy' = 'infobatch' THEN config->'infobatch_max_prune' END,
        'scan_spread', CASE WHEN config->>'strategy' = 'scan' THEN config->'scan_spread' END,
        'scan_low_share', CASE WHEN config->>'strategy' = 'scan' THEN config->'scan_low_share' END,
        'divbs_features', CASE WHEN config->>'strategy' = 'divbs' THEN config->'divbs_features' END));

-- Each named run's settings: its record's, or read out of its config (run_setting).
CREATE OR REPLACE MACRO run_settings(run_names) AS TABLE
    SELECT name, coalesce(settings, run_setting(config)) AS setting FROM runs WHERE list_contains(run_names, name);

-- For each of the named runs, the settings in which it differs from some other run that
-- has them, as 'key=value ...' ('' where all share one setting): the label that keeps runs of
-- different experiments from being averaged together.
CREATE OR REPLACE MACRO setting_labels(run_names) AS TABLE
    WITH s AS (
        SELECT * FROM run_settings(run_names)
    ),
    varying AS (
        SELECT k FROM s, unnest(json_keys(s.setting)) AS t(k)
        GROUP BY k
        HAVING count(DISTINCT s.setting->>k) > 1   -- among the runs that have the setting at all
    )
    SELECT s.name AS run,
           coalesce(string_agg(v.k || '=' || coalesce(s.setting->>v.k, 'null'), ' ' ORDER BY v.k), '') AS setting
    FROM s LEFT JOIN varying v ON true
    GROUP BY s.name;

-- What a run is, as the paper's tables name it: its online strategy, or 'coreset RULE'
-- (+ the strategy run inside it) for a run on a `dissect curate` subset.
CREATE OR REPLACE MACRO run_method(strategy, subset) AS
    CASE WHEN subset IS NULL THEN strategy
         ELSE 'coreset ' || (subset->>'rule') || CASE WHEN strategy = 'full' THEN '' ELSE ' + ' || strategy END
    END;

-- The fraction of the dataset's train samples a run trains on per epoch: its selection
-- ratio times the fraction a subset kept.
CREATE OR REPLACE MACRO run_ratio(ratio, subset) AS
    round(ratio * coalesce((subset->>'keep')::DOUBLE, 1), 3);

-- The share of the samples offered to a run that it trained on (back-propagated): the
-- samples trained over those loaded plus those its strategy pruned before loading
-- (steps.n_pruned, NULL in ledgers older than it: none pruned). An aggregate over steps.
CREATE OR REPLACE MACRO trained_share(n_selected, batch_size, n_pruned) AS
    sum(n_selected) / nullif(sum(batch_size) + coalesce(sum(n_pruned), 0), 0);

-- Per run: the fraction of its dataset's train samples it trained on per epoch, as it really
-- did (trained_share times the fraction a subset kept), where every method is placed; the
-- nominal ratio (run_ratio) beside it.
CREATE OR REPLACE MACRO run_trained(run_names) AS TABLE
    SELECT r.name AS run, run_ratio(r.ratio, r.subset) AS nominal_ratio,
           coalesce(round(any_value(t.share) * coalesce((r.subset->>'keep')::DOUBLE, 1), 3),
                    run_ratio(r.ratio, r.subset)) AS trained
    FROM runs r
    LEFT JOIN (SELECT run, trained_share(n_selected, batch_size, n_pruned) AS share
               FROM steps WHERE list_contains(run_names, run) GROUP BY run) t ON t.run = r.name
    WHERE list_contains(run_names, r.name)
    GROUP BY r.name, r.ratio, r.subset;

-- Final value of a metric per (method, setting, nominal ratio) over the completed ones of the
-- named runs: mean, sample std and n (the seeds of that experiment), placed at the mean
-- fraction its seeds trained (ratio), the nominal ratio beside it.
CREATE OR REPLACE MACRO metric_by_setting(metric_name, run_names) AS TABLE
    SELECT run_method(r.strategy, r.subset) AS method, l.setting, round(avg(t.trained), 3) AS ratio,
           t.nominal_ratio, avg(f.value) AS metric_mean, coalesce(stddev_samp(f.value), 0) AS metric_std,
           count(*) AS n
    FROM final_metric(metric_name) f
    JOIN runs r ON r.name = f.run
    JOIN setting_labels(run_names) l ON l.run = r.name
    JOIN run_trained(run_names) t ON t.run = r.name
    WHERE r.status = 'completed'
    GROUP BY ALL;

-- A run's epochs of random warm-up: DISSect-Warmup's T_w, NCR's warm-up epochs; 0 for every
-- other strategy.
CREATE OR REPLACE MACRO warmup_epochs(run_name) AS (
    SELECT CASE strategy WHEN 'dissect-warmup' THEN coalesce((config->>'warmup_epochs')::INTEGER, 0)
                         WHEN 'ncr' THEN coalesce((config->>'ncr_warmup_epoch')::INTEGER, 0)
                         ELSE 0 END
    FROM runs WHERE name = run_name
);

-- Per step of each run: training iterations as the paper counts them (samples trained so
-- far / the global batch size), steps done, seconds of steps so far (data, scoring pass and
-- pick, training) and core seconds: the same without t_score, the time the paper's Table 6
-- counts (its authors' README: the algorithm's core, the scoring forward left out).
CREATE OR REPLACE MACRO step_clock(run_names) AS TABLE
    SELECT s.run, s.step,
           sum(s.n_selected) OVER w / (r.batch_size * r.world_size) AS trained,
           s.step + 1 AS steps,
           sum(s.t_data + s.t_score + s.t_train) OVER w AS seconds,
           sum(s.t_data + s.t_train) OVER w AS core_seconds
    FROM steps s JOIN runs r ON r.name = s.run
    WHERE list_contains(run_names, s.run)
    WINDOW w AS (PARTITION BY s.run ORDER BY s.step);

-- Each eval of the named runs at the step it was taken, with the clock of step_clock.
CREATE OR REPLACE MACRO metric_curve(metric_name, run_names) AS TABLE
    SELECT e.run, e.step, e.value, c.trained, c.steps, c.seconds, c.core_seconds
    FROM evals e
    JOIN step_clock(run_names) c ON c.run = e.run AND c.step = e.step - 1
    WHERE e.metric = metric_name;
