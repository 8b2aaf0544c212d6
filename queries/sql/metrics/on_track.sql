-- What the on-track verdicts are made from, one row per participant
-- enrolled by the as-of date: the dates of enrolment, exit, first job,
-- first education and psychiatric treatment; whether the exit was a
-- dropout and whether it was clarified (as `clarified_share` counts it);
-- and the programme's end.
SELECT p.program, p.enrolled_on, p.exited_on, p.first_job_on, p.first_education_on,
       p.psychiatric_treatment_on,
       coalesce(p.exit_reason = 'dropped_out', false) AS dropped_out,
       coalesce(p.exit_reason IN ('completed', 'transferred')
                AND p.current_outcome_group IN ('job', 'education', 'activity', 'benefit'), false) AS clarified,
       g.ends_on
FROM participants p
JOIN programs g ON g.program = p.program
