-- One row per enrolled participant, with what their later events say.
WITH enrolment AS (
  SELECT *, occurred_on AS enrolled_on,
         row_number() OVER (PARTITION BY program, participant ORDER BY position DESC) AS latest
  FROM internal.enrolments
), exits AS (
  SELECT program, participant, occurred_on AS exited_on, reason AS exit_reason,
         row_number() OVER (PARTITION BY program, participant ORDER BY position DESC) AS latest
  FROM internal.exits
), current_status AS (
  SELECT program, participant, status, outcome_group, from_on
  FROM status_spells WHERE to_on IS NULL
), firsts AS (
  SELECT program, participant,
         min(CASE WHEN outcome_group = 'job' THEN from_on END) AS first_job_on,
         min(CASE WHEN outcome_group = 'education' THEN from_on END) AS first_education_on
  FROM status_spells GROUP BY program, participant
), psychiatric AS (
  SELECT program, participant, min(occurred_on) AS psychiatric_treatment_on
  FROM internal.psychiatric_treatments
  GROUP BY program, participant
)
SELECT e.program, e.participant, e.enrolled_on, x.exited_on, x.exit_reason,
       e.birth_year, e.gender, e.referral_source,
       e.target_groups,
       e.income_source, e.prior_psychiatric_diagnosis, e.physical_challenges, e.consultant,
       c.status AS current_status,
       c.outcome_group AS current_outcome_group,
       c.from_on AS current_status_since,
       f.first_job_on, f.first_education_on, p.psychiatric_treatment_on
FROM enrolment e
LEFT JOIN exits x ON x.program = e.program AND x.participant = e.participant AND x.latest = 1
LEFT JOIN current_status c ON c.program = e.program AND c.participant = e.participant
LEFT JOIN firsts f ON f.program = e.program AND f.participant = e.participant
LEFT JOIN psychiatric p ON p.program = e.program AND p.participant = e.participant
WHERE e.latest = 1
