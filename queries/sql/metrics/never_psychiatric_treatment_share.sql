-- never_psychiatric_treatment_share: participants with no
-- `psychiatric_treatment_started` up to the as-of date, out of every
-- participant enrolled by then.
SELECT program,
       sum(CASE WHEN psychiatric_treatment_on IS NULL THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM participants
GROUP BY program
