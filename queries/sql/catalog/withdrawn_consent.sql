-- Internal: participants whose latest consent for scope `evaluation`, as
-- known at the known-at time, is withdrawn. The as-of date does not bring
-- it back: a withdrawal holds for questions about any earlier date too.
SELECT program AS withdrawn_program, participant AS withdrawn_participant
FROM (SELECT e.program, e.participant, json_get_bool(e.data, 'given') AS given,
             row_number() OVER (PARTITION BY e.program, e.participant ORDER BY e.occurred_on DESC, e.position DESC) AS latest
      FROM internal.lake_events e
      LEFT JOIN internal.retracted_events r ON r.event_id = e.event_id
      WHERE e.type = 'consent_recorded' AND json_get_str(e.data, 'scope') = 'evaluation'
        AND r.event_id IS NULL AND {transaction_time} AND {programme})
WHERE latest = 1 AND NOT given
