-- The targets in force: each programme's latest `targets_set` replaces the
-- ones before it.
SELECT program, target['metric'] AS metric, target['op'] AS op, target['value'] AS value, set_on
FROM (SELECT program, occurred_on AS set_on, unnest(targets) AS target
      FROM (SELECT program, occurred_on, targets,
                   row_number() OVER (PARTITION BY program ORDER BY occurred_on DESC, position DESC) AS latest
            FROM internal.target_settings)
      WHERE latest = 1)
