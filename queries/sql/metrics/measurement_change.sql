-- Paired first-vs-last change per instrument: participants measured at least
-- twice with an instrument, their first and last composite (by date, then
-- wave). Lower is better on every instrument (5 is worst), so `improved`
-- means the last composite is lower than the first. Lowest and highest are
-- over the paired first and last composites. The pairs are kept by the lake
-- projector (`internal.measurement_pairs`); the tests and benchmarks derive
-- the same pairs from `measurement_scores` with windows
-- (tests/src/measurement_pairs_windows.sql), which other engines run too.
WITH pairs AS (
  SELECT m.program, m.instrument, m.first_composite, m.last_composite
  FROM internal.measurement_pairs m
  JOIN participants p ON p.program = m.program AND p.participant = m.participant
)
SELECT program, instrument,
       count(*) AS paired,
       avg(first_composite) AS mean_first,
       avg(last_composite) AS mean_last,
       sum(CASE WHEN last_composite < first_composite - 1e-9 THEN 1 ELSE 0 END) AS improved,
       sum(CASE WHEN abs(last_composite - first_composite) <= 1e-9 THEN 1 ELSE 0 END) AS unchanged,
       sum(CASE WHEN last_composite > first_composite + 1e-9 THEN 1 ELSE 0 END) AS worse,
       least(min(first_composite), min(last_composite)) AS lowest_composite,
       greatest(max(first_composite), max(last_composite)) AS highest_composite
FROM pairs
GROUP BY program, instrument
