-- The status distribution at the as-of date: every enrolled participant
-- (exited or not) counted in the outcome group of their last status;
-- `unknown` when no status was recorded.
SELECT program, coalesce(current_outcome_group, 'unknown') AS outcome_group, count(*) AS participants
FROM participants
GROUP BY program, coalesce(current_outcome_group, 'unknown')
