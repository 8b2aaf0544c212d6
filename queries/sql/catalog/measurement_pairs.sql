-- Internal: each participant's first and last composite per instrument
-- (by date, then wave, then composite), once measured at least twice, for
-- the as-of date and known-at time: the version the lake projector keeps
-- (projections/src/lake/participants.rs) in force then.
SELECT s.program, s.participant, s.instrument, s.first_composite, s.last_composite
FROM (SELECT * FROM internal.lake_measurement_pairs
      WHERE {valid_interval} AND {recorded_interval} AND {programme}) s
LEFT ANTI JOIN internal.lake_participant_voids x ON x.version = s.version
