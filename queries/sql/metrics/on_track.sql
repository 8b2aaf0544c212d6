-- What the on-track verdicts are made from, one row per participant
-- enrolled by the as-of date: the dates of enrolment, exit, first job,
-- first education and psychiatric treatment; whether the exit was a
-- dropout and whether it was clarified (as `clarified_share` counts it);
-- the programme's end and the as-of date.
SELECT p.program,
       CAST(p.enrolled_on AS VARCHAR) AS enrolled_on,
       CAST(p.exited_on AS VARCHAR) AS exited_on,
       CAST(p.first_job_on AS VARCHAR) AS first_job_on,
       CAST(p.first_education_on AS VARCHAR) AS first_education_on,
       CAST(p.psychiatric_treatment_on AS VARCHAR) AS psychiatric_treatment_on,
       coalesce(p.exit_reason = 'dropped_out', false) AS dropped_out,
       coalesce(p.exit_reason IN ('completed', 'transferred')
                AND p.current_outcome_group IN ('job', 'education', 'activity', 'benefit'), false) AS clarified,
       CAST(g.ends_on AS VARCHAR) AS ends_on,
       CAST(s.as_of AS VARCHAR) AS as_of
FROM participants p
JOIN programs g ON g.program = p.program
CROSS JOIN internal.snapshot s
