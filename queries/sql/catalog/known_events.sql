-- Internal: the lake's events that had happened by the as-of date (valid
-- time) and had been recorded by the known-at time (transaction time), of
-- the programmes the engine is scoped to (all when unscoped). Only the
-- catalog's `events` reads them; the other tables read the typed ones.
SELECT * FROM internal.lake_events WHERE {valid_time} AND {transaction_time} AND {programme}
