-- Internal: participants whose latest consent for scope `evaluation`, as
-- known at the known-at time, is withdrawn. The as-of date does not bring
-- it back: a withdrawal holds for questions about any earlier date too.
SELECT program AS withdrawn_program, participant AS withdrawn_participant
FROM (SELECT c.program, c.participant, c.given,
             row_number() OVER (PARTITION BY c.program, c.participant ORDER BY c.occurred_on DESC, c.position DESC) AS latest
      FROM internal.lake_consents c
      LEFT ANTI JOIN internal.retracted_events r ON r.event_id = c.event_id
      WHERE c.scope = 'evaluation' AND {transaction_time} AND {programme})
WHERE latest = 1 AND NOT given
