-- Share "poor" per measurement wave, for the self-rated instruments:
-- measurements with rating 4 or 5, out of the measurements of that wave.
SELECT m.program, m.instrument, m.wave,
       sum(CASE WHEN m.score >= 4 THEN 1 ELSE 0 END) AS poor,
       count(*) AS measured
FROM measurements m
JOIN participants p ON p.program = m.program AND p.participant = m.participant
WHERE m.instrument IN ('self_rated_mental_health', 'self_rated_physical_health')
  AND m.item = 'rating' AND m.wave IS NOT NULL
GROUP BY m.program, m.instrument, m.wave
