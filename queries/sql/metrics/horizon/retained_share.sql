-- retained_share at a horizon: participants who had not exited with
-- reason `dropped_out` by their horizon day, out of those whose horizon
-- day had come by the as-of date (less those censored).
SELECT program,
       sum(CASE WHEN exit_reason = 'dropped_out' AND exited_on <= horizon_on
                THEN 0 ELSE 1 END) AS numerator,
       count(*) AS denominator
FROM {horizons}
WHERE due AND NOT {censored}
GROUP BY program
