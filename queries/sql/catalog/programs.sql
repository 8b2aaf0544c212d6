-- The latest definition of each programme.
SELECT program,
       json_get_str(data, 'name') AS name,
       json_get_str(data, 'organisation') AS organisation,
       json_get_str(data, 'country') AS country,
       CAST(json_get_str(data, 'starts_on') AS DATE) AS starts_on,
       CAST(json_get_str(data, 'ends_on') AS DATE) AS ends_on,
       json_get_int(data, 'planned_participants') AS planned_participants,
       json_get_float(data, 'budget', 'amount') AS budget_amount,
       json_get_str(data, 'budget', 'currency') AS budget_currency
FROM (SELECT program, data,
             row_number() OVER (PARTITION BY program ORDER BY occurred_on DESC, position DESC) AS latest
      FROM internal.in_force WHERE type = 'program_defined')
WHERE latest = 1
