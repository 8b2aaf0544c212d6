-- One row per item score of a measurement.
SELECT program, participant, instrument, wave, occurred_on, score['item'] AS item, score['score'] AS score
FROM (SELECT program, participant, instrument, wave, occurred_on, unnest(scores) AS score
      FROM internal.measurement_records)
