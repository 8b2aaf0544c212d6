-- retained_share: participants not exited with reason `dropped_out`, out of
-- every participant enrolled by the as-of date.
SELECT program,
       sum(CASE WHEN exit_reason = 'dropped_out' THEN 0 ELSE 1 END) AS numerator,
       count(*) AS denominator
FROM participants
GROUP BY program
