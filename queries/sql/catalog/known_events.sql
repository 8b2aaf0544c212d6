-- Internal: the lake's events that had happened by the as-of date (valid
-- time) and had been recorded by the known-at time (transaction time), of
-- the programme the engine is scoped to (all when unscoped).
SELECT * FROM internal.lake_events WHERE {valid_time} AND {transaction_time} AND {programme}
