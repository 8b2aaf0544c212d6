-- clarified_share at a horizon: of those who had exited by their horizon
-- day (and whose horizon day had come by the as-of date, less those
-- censored), the ones who exited with reason `completed` or `transferred`
-- and whose status on the horizon day (the last one recorded) was in
-- outcome group `job`, `education`, `activity` or `benefit`.
SELECT program,
       sum(CASE WHEN exit_reason IN ('completed', 'transferred')
                 AND outcome_group IN ('job', 'education', 'activity', 'benefit')
            THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM {horizons}
WHERE due AND NOT {censored} AND exited_on <= horizon_on
GROUP BY program
