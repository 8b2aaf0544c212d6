-- horizons(months, anchor): one row per participant who had reached the
-- anchor (`enrolment` or `exit`) by the as-of date, with
--   anchor_on   the enrolment or exit date;
--   horizon_on  `months` calendar months later (the month's last day when
--               it has fewer days: 31 August + 6 months = 28 February);
--   due         whether the horizon day had come by the as-of date;
--   status, outcome_group  the status spell in force on the horizon day
--               (none before the first status). Nothing is recorded after
--               an exit, so after exit this is the last status recorded.
-- Called as `horizons(6, 'exit')`; $1 is the months, $2 the anchor.
PREPARE horizons(BIGINT, VARCHAR) AS
SELECT h.program, h.participant, h.anchor_on, h.horizon_on,
       h.horizon_on <= {as_of} AS due,
       h.enrolled_on, h.exited_on, h.exit_reason, h.psychiatric_treatment_on,
       s.status, s.outcome_group
FROM (SELECT a.*, add_months(a.anchor_on, $1) AS horizon_on
      FROM (SELECT program, participant, enrolled_on, exited_on, exit_reason, psychiatric_treatment_on,
                   CASE WHEN $2 = 'exit' THEN exited_on ELSE enrolled_on END AS anchor_on
            FROM participants) a
      WHERE a.anchor_on IS NOT NULL) h
LEFT JOIN status_spells s
       ON s.program = h.program AND s.participant = h.participant
      AND s.from_on <= h.horizon_on AND (s.to_on IS NULL OR s.to_on > h.horizon_on)
