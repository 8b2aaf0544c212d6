-- never_psychiatric_treatment_share at a horizon: participants with no
-- psychiatric treatment started up to their horizon day, out of those
-- whose horizon day had come by the as-of date (less those censored).
SELECT program,
       sum(CASE WHEN psychiatric_treatment_on IS NULL OR psychiatric_treatment_on > horizon_on
                THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM {horizons}
WHERE due AND NOT {censored}
GROUP BY program
