-- education_share: participants who had status `education` at any time up
-- to the as-of date, out of every participant enrolled by then. (Status
-- `education` is the one status in outcome group `education`.)
SELECT program,
       sum(CASE WHEN first_education_on IS NOT NULL THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM participants
GROUP BY program
