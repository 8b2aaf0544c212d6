-- One row per status period: a status lasts until the participant's next
-- status (valid-time order; same-day changes in the order recorded).
SELECT s.program, s.participant, s.status, g.outcome_group, s.from_on,
       lead(s.from_on) OVER (PARTITION BY s.program, s.participant ORDER BY s.from_on, s.position) AS to_on,
       s.hours_per_week, s.pathway
FROM (SELECT program, participant, position, occurred_on AS from_on,
             json_get_str(data, 'status') AS status,
             json_get_float(data, 'hours_per_week') AS hours_per_week,
             json_get_str(data, 'pathway') AS pathway
      FROM internal.in_force WHERE type = 'status_changed') s
JOIN internal.outcome_groups g ON g.status = s.status
