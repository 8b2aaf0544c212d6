-- Internal: each programme's indicators as last recorded by the known-at
-- time (a definition is known-at, not as-of: an indicator defined today
-- also counts the past), of the programmes in scope.
SELECT program, indicator, description, numerator, denominator
FROM (SELECT program,
             json_get_str(data, 'name') AS indicator,
             json_get_str(data, 'description') AS description,
             json_get_str(data, 'numerator') AS numerator,
             json_get_str(data, 'denominator') AS denominator,
             row_number() OVER (PARTITION BY program, json_get_str(data, 'name') ORDER BY position DESC) AS latest
      FROM internal.lake_events
      WHERE type = 'indicator_defined' AND {transaction_time} AND {programme})
WHERE latest = 1
