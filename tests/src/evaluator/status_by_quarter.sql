-- Status distribution by programme and enrolment quarter.
SELECT program, date_trunc('quarter', enrolled_on) AS quarter,
       coalesce(current_outcome_group, 'unknown') AS outcome_group, count(*) AS participants
FROM participants GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
