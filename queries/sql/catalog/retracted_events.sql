-- Internal: events retracted by a retraction recorded by the known-at time.
-- A retraction corrects the record, so its own date does not matter.
SELECT DISTINCT retracted_event_id AS event_id
FROM internal.lake_retractions
WHERE {transaction_time} AND {programme}
