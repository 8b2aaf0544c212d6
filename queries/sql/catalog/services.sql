-- One row per service period: a start is closed by an end of the same
-- service that follows it directly (valid-time order, then as recorded).
SELECT program, participant, service, from_on, CASE WHEN next_type = 'service_ended' THEN next_on END AS to_on
FROM (SELECT program, participant, type, service, occurred_on AS from_on,
             lead(type) OVER w AS next_type, lead(occurred_on) OVER w AS next_on
      FROM internal.service_changes
      WINDOW w AS (PARTITION BY program, participant, service ORDER BY occurred_on, position))
WHERE type = 'service_started'
