-- Internal: one row per item score, keyed by the measurement's log position.
SELECT position, program, participant, instrument, wave, occurred_on, item, json_get_float(scores, item) AS score
FROM (SELECT position, program, participant, json_get_str(data, 'instrument') AS instrument,
             json_get_int(data, 'wave') AS wave, occurred_on, json_get_json(data, 'scores') AS scores,
             unnest(json_object_keys(data, 'scores')) AS item
      FROM internal.in_force WHERE type = 'measurement_recorded')
