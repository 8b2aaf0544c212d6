-- One row per enrolled participant, with what their later events say.
WITH enrolment AS (
  SELECT program, participant, occurred_on AS enrolled_on, position, data,
         row_number() OVER (PARTITION BY program, participant ORDER BY position DESC) AS latest
  FROM internal.in_force WHERE type = 'participant_enrolled'
), target_groups AS (
  SELECT position, array_agg(json_as_text(target_group)) AS target_groups
  FROM (SELECT position, unnest(json_get_array(data, 'target_groups')) AS target_group FROM enrolment)
  GROUP BY position
), exits AS (
  SELECT program, participant, occurred_on AS exited_on, json_get_str(data, 'reason') AS exit_reason,
         row_number() OVER (PARTITION BY program, participant ORDER BY position DESC) AS latest
  FROM internal.in_force WHERE type = 'participant_exited'
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
  FROM internal.in_force WHERE type = 'psychiatric_treatment_started'
  GROUP BY program, participant
)
SELECT e.program, e.participant, e.enrolled_on, x.exited_on, x.exit_reason,
       json_get_int(e.data, 'birth_year') AS birth_year,
       json_get_str(e.data, 'gender') AS gender,
       json_get_str(e.data, 'referral_source') AS referral_source,
       g.target_groups,
       json_get_str(e.data, 'income_source') AS income_source,
       json_get_bool(e.data, 'prior_psychiatric_diagnosis') AS prior_psychiatric_diagnosis,
       json_get_bool(e.data, 'physical_challenges') AS physical_challenges,
       json_get_str(e.data, 'consultant') AS consultant,
       c.status AS current_status,
       c.outcome_group AS current_outcome_group,
       c.from_on AS current_status_since,
       f.first_job_on, f.first_education_on, p.psychiatric_treatment_on
FROM enrolment e
LEFT JOIN target_groups g ON g.position = e.position
LEFT JOIN exits x ON x.program = e.program AND x.participant = e.participant AND x.latest = 1
LEFT JOIN current_status c ON c.program = e.program AND c.participant = e.participant
LEFT JOIN firsts f ON f.program = e.program AND f.participant = e.participant
LEFT JOIN psychiatric p ON p.program = e.program AND p.participant = e.participant
WHERE e.latest = 1
