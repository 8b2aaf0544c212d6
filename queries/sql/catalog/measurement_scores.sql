-- One row per measurement; the composite is the mean of the items answered.
SELECT program, participant, instrument, wave, occurred_on, avg(score) AS composite
FROM internal.measurement_items
GROUP BY position, program, participant, instrument, wave, occurred_on
