-- job_share: participants who had a status in outcome group `job` at any
-- time up to the as-of date, out of every participant enrolled by then.
SELECT program,
       sum(CASE WHEN first_job_on IS NOT NULL THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM participants
GROUP BY program
