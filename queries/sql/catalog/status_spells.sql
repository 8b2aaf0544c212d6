-- One row per status period: a status lasts until the participant's next
-- status (valid-time order; same-day changes in the order recorded).
SELECT program, participant, status, outcome_group, occurred_on AS from_on,
       lead(occurred_on) OVER (PARTITION BY program, participant ORDER BY occurred_on, position) AS to_on,
       hours_per_week, pathway
FROM internal.status_changes
