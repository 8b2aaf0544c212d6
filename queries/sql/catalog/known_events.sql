-- Internal: the lake's events that had happened by the as-of date (valid
-- time) and had been recorded by the known-at time (transaction time).
SELECT * FROM internal.lake_events WHERE {valid_time} AND {transaction_time}
