-- Who a horizon metric leaves out, per programme: participants whose
-- horizon day had not come by the as-of date (not yet due), and, when the
-- report censors, those who moved away or died before it (censored).
-- {horizons} is e.g. horizons(6, 'exit'); {censored} the censoring rule.
SELECT program,
       sum(CASE WHEN NOT due THEN 1 ELSE 0 END) AS not_yet_due,
       sum(CASE WHEN due AND {censored} THEN 1 ELSE 0 END) AS censored
FROM {horizons}
GROUP BY program
