-- Share "poor" per measurement wave, for the self-rated instruments:
-- measurements with rating 4 or 5, out of the measurements of that wave.
-- A self-rated instrument has one item, `rating`, so its composite (the
-- mean of the items answered) is the rating: read from
-- `measurement_scores`, one row per measurement, not from the item rows.
SELECT m.program, m.instrument, m.wave,
       sum(CASE WHEN m.composite >= 4 THEN 1 ELSE 0 END) AS poor,
       count(*) AS measured
FROM measurement_scores m
JOIN participants p ON p.program = m.program AND p.participant = m.participant
WHERE m.instrument IN ('self_rated_mental_health', 'self_rated_physical_health')
  AND m.wave IS NOT NULL
GROUP BY m.program, m.instrument, m.wave
