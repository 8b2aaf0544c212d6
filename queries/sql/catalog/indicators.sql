-- Internal: each programme's indicators as last recorded by the known-at
-- time (a definition is known-at, not as-of: an indicator defined today
-- also counts the past), of the programmes in scope.
SELECT program, name AS indicator, description, numerator, denominator
FROM (SELECT *, row_number() OVER (PARTITION BY program, name ORDER BY position DESC) AS latest
      FROM internal.lake_indicator_definitions
      WHERE {transaction_time} AND {programme})
WHERE latest = 1
