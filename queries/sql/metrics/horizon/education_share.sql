-- education_share at a horizon: participants whose status in force on
-- their horizon day was `education`, out of those whose horizon day had
-- come by the as-of date (less those censored).
SELECT program,
       sum(CASE WHEN status = 'education' THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM {horizons}
WHERE due AND NOT {censored}
GROUP BY program
