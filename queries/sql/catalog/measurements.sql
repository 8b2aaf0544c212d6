-- One row per item score of a measurement.
SELECT program, participant, instrument, wave, occurred_on, item, score FROM internal.measurement_items
