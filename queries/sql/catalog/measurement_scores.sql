-- One row per measurement; the composite (the mean of the items answered)
-- is computed once, when the lake takes the event in.
SELECT program, participant, instrument, wave, occurred_on, composite
FROM internal.measurement_records
WHERE composite IS NOT NULL
