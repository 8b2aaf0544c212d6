-- Time to first job, one row per participant, for the Kaplan-Meier table:
-- days from enrolment to the first status in outcome group `job`, or to
-- the exit or the as-of date (censored) when there was none.
SELECT p.program, p.participant,
       CAST(coalesce(p.first_job_on, p.exited_on, s.as_of) AS INT) - CAST(p.enrolled_on AS INT) AS days,
       p.first_job_on IS NOT NULL AS got_job
FROM participants p
CROSS JOIN internal.snapshot s
