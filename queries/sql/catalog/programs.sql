-- The latest definition of each programme.
SELECT program, name, organisation, country, starts_on, ends_on, planned_participants,
       budget['amount'] AS budget_amount, budget['currency'] AS budget_currency
FROM (SELECT *, row_number() OVER (PARTITION BY program ORDER BY occurred_on DESC, position DESC) AS latest
      FROM internal.program_definitions)
WHERE latest = 1
