-- job_share at a horizon: participants whose status in force on their
-- horizon day was in outcome group `job`, out of those whose horizon day
-- had come by the as-of date (less those censored).
SELECT program,
       sum(CASE WHEN outcome_group = 'job' THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM {horizons}
WHERE due AND NOT {censored}
GROUP BY program
