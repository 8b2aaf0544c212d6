-- The targets in force: each programme's latest `targets_set` replaces the
-- ones before it.
SELECT program,
       json_get_str(target, 'metric') AS metric,
       json_get_str(target, 'op') AS op,
       json_get_float(target, 'value') AS value,
       set_on
FROM (SELECT program, occurred_on AS set_on, unnest(json_get_array(data, 'targets')) AS target
      FROM (SELECT program, occurred_on, data,
                   row_number() OVER (PARTITION BY program ORDER BY occurred_on DESC, position DESC) AS latest
            FROM internal.in_force WHERE type = 'targets_set')
      WHERE latest = 1)
