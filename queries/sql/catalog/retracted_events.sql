-- Internal: events retracted by a retraction recorded by the known-at time.
-- A retraction corrects the record, so its own date does not matter.
SELECT DISTINCT json_get_str(data, 'event_id') AS event_id
FROM internal.lake_events
WHERE type = 'event_retracted' AND {transaction_time} AND {programme}
