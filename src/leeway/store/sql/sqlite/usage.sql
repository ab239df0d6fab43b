-- Usage and cost from the roll-up (leeway.store.usage), kept by the jobs_usage_rolled_up trigger.
-- Both dialects ship these names with the same parameters; a list parameter is JSON text here.

-- name: usage_buckets
-- One width's buckets in [:start, :end), summed per bucket and per the dimensions asked for (a
-- by_<dimension> false sums over it, which reads as NULL); a NULL filter list filters nothing.
SELECT start,
       CASE WHEN :by_tenant THEN tenant END AS tenant,
       CASE WHEN :by_key_id THEN key_id END AS key_id,
       CASE WHEN :by_model THEN model END AS model,
       CASE WHEN :by_completion_window THEN completion_window END AS completion_window,
       CASE WHEN :by_surface THEN surface END AS surface,
       CASE WHEN :by_batch THEN batch_id <> '' END AS batch,
       CASE WHEN :by_batch_id THEN batch_id END AS batch_id,
       sum(requests) AS requests, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(input_cost) AS input_cost,
       sum(output_cost) AS output_cost
FROM usage_buckets
WHERE width = :width AND start >= :start AND start < :end
  AND (:tenants IS NULL OR tenant IN (SELECT value FROM json_each(:tenants)))
  AND (:key_ids IS NULL OR key_id IN (SELECT value FROM json_each(:key_ids)))
  AND (:models IS NULL OR model IN (SELECT value FROM json_each(:models)))
  AND (:windows IS NULL OR completion_window IN (SELECT value FROM json_each(:windows)))
  AND (:batch IS NULL OR (batch_id <> '') = :batch)
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
ORDER BY 1, 2, 3, 4, 5, 6, 7, 8;

-- name: spent
-- A tenant's cost since :since (a day's start: a month's budget period).
SELECT coalesce(sum(input_cost + output_cost), 0) FROM usage_buckets
WHERE width = 86400 AND tenant = :tenant AND start >= :since;

-- name: usage_totals
-- Everything billed so far, per tenant, model and window.
SELECT tenant, model, completion_window, sum(requests), sum(input_tokens), sum(output_tokens),
       sum(input_cost + output_cost)
FROM usage_buckets WHERE width = 86400
GROUP BY tenant, model, completion_window
ORDER BY tenant, model, completion_window;
