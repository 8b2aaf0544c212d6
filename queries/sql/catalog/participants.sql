-- One row per enrolled participant, with what their later events say: the
-- version of their row in force on the as-of date in the record at the
-- known-at time (the lake projector keeps them; see
-- projections/src/lake/participants.rs), with the attributes of the
-- enrolment in force.
SELECT v.program, v.participant, v.enrolled_on, v.exited_on, v.exit_reason,
       e.birth_year, e.gender, e.referral_source,
       e.target_groups,
       e.income_source, e.prior_psychiatric_diagnosis, e.physical_challenges, e.consultant,
       v.current_status, v.current_outcome_group, v.current_status_since,
       v.first_job_on, v.first_education_on, v.psychiatric_treatment_on
FROM (SELECT * FROM internal.lake_participant_versions
      WHERE {valid_interval} AND {recorded_interval} AND {programme}) v
LEFT ANTI JOIN internal.lake_participant_voids x ON x.version = v.version
JOIN internal.lake_enrolments e ON e.position = v.enrolment
