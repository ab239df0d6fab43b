-- Usage and cost from the roll-up (leeway.store.usage), kept by the jobs_usage_rolled_up trigger.
-- Both dialects ship these names with the same parameters; a list parameter is an array.

-- name: usage_buckets
-- One width's buckets in [:start, :end), summed per bucket and per the dimensions asked for (a
-- by_<dimension> false sums over it, which reads as NULL); a NULL filter list filters nothing.
SELECT start,
       CASE WHEN :by_tenant::boolean THEN tenant END AS tenant,
       CASE WHEN :by_key_id::boolean THEN key_id END AS key_id,
       CASE WHEN :by_model::boolean THEN model END AS model,
       CASE WHEN :by_completion_window::boolean THEN completion_window END AS completion_window,
       CASE WHEN :by_surface::boolean THEN surface END AS surface,
       CASE WHEN :by_batch::boolean THEN batch_id <> '' END AS batch,
       CASE WHEN :by_batch_id::boolean THEN batch_id END AS batch_id,
       sum(requests) AS requests, sum(input_tokens) AS input_tokens,
       sum(output_tokens) AS output_tokens, sum(input_cost) AS input_cost,
       sum(output_cost) AS output_cost
FROM usage_buckets
WHERE width = :width AND start >= :start AND start < :end
  AND (:tenants::text[] IS NULL OR tenant = ANY(:tenants::text[]))
  AND (:key_ids::text[] IS NULL OR key_id = ANY(:key_ids::text[]))
  AND (:models::text[] IS NULL OR model = ANY(:models::text[]))
  AND (:windows::text[] IS NULL OR completion_window = ANY(:windows::text[]))
  AND (:batch::boolean IS NULL OR (batch_id <> '') = :batch::boolean)
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
