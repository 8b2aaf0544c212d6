-- Internal, one per typed table of the lake ({table}): its rows in force —
-- happened by the as-of date (valid time), recorded by the known-at time
-- (transaction time), of the programmes in scope, and not retracted by a
-- retraction recorded by then.
SELECT f.* FROM internal.lake_{table} f
LEFT ANTI JOIN internal.retracted_events r ON r.event_id = f.event_id
WHERE {valid_time} AND {transaction_time} AND {programme}
