-- The participants table folded from the typed facts by SQL, as the catalog
-- derived it before the lake kept participant versions: the reference the
-- versions are held equal to (tests/tests/lake.rs).
WITH enrolment AS (
  SELECT *, occurred_on AS enrolled_on,
         row_number() OVER (PARTITION BY program, participant ORDER BY position DESC) AS latest
  FROM internal.enrolments
), exits AS (
  SELECT program, participant, occurred_on AS exited_on, reason AS exit_reason,
         row_number() OVER (PARTITION BY program, participant ORDER BY position DESC) AS latest
  FROM internal.exits
), statuses AS (
  -- The last status change (valid-time order; same day as recorded) is the
  -- current status, as the open status spell is.
  SELECT program, participant,
         last_value(status ORDER BY occurred_on, position) AS status,
         last_value(outcome_group ORDER BY occurred_on, position) AS outcome_group,
         max(occurred_on) AS since,
         min(CASE WHEN outcome_group = 'job' THEN occurred_on END) AS first_job_on,
         min(CASE WHEN outcome_group = 'education' THEN occurred_on END) AS first_education_on
  FROM internal.status_changes GROUP BY program, participant
), psychiatric AS (
  SELECT program, participant, min(occurred_on) AS psychiatric_treatment_on
  FROM internal.psychiatric_treatments
  GROUP BY program, participant
)
SELECT e.program, e.participant, e.enrolled_on, x.exited_on, x.exit_reason,
       e.birth_year, e.gender, e.referral_source,
       e.target_groups,
       e.income_source, e.prior_psychiatric_diagnosis, e.physical_challenges, e.consultant,
       s.status AS current_status,
       s.outcome_group AS current_outcome_group,
       s.since AS current_status_since,
       s.first_job_on, s.first_education_on, p.psychiatric_treatment_on
FROM enrolment e
LEFT JOIN exits x ON x.program = e.program AND x.participant = e.participant AND x.latest = 1
LEFT JOIN statuses s ON s.program = e.program AND s.participant = e.participant
LEFT JOIN psychiatric p ON p.program = e.program AND p.participant = e.participant
WHERE e.latest = 1
