-- Measurement change as the catalog computed it before the lake kept
-- measurement pairs: ordered first/last aggregates over measurement_scores.
-- The reference tests/tests/lake.rs holds the pairs equal to.
-- Paired first-vs-last change per instrument: participants measured at least
-- twice with an instrument, their first and last composite (by date, then
-- wave). Lower is better on every instrument (5 is worst), so `improved`
-- means the last composite is lower than the first. Lowest and highest are
-- over the paired first and last composites. (`first_value`/`last_value`
-- as ordered aggregates are DataFusion's; tests/benches/analytics.rs holds
-- the same definition with windows, for engines without them.)
WITH pairs AS (
  SELECT m.program, m.participant, m.instrument,
         first_value(m.composite ORDER BY m.occurred_on, m.wave, m.composite) AS first_composite,
         last_value(m.composite ORDER BY m.occurred_on, m.wave, m.composite) AS last_composite
  FROM measurement_scores m
  JOIN participants p ON p.program = m.program AND p.participant = m.participant
  GROUP BY m.program, m.participant, m.instrument
  HAVING count(*) >= 2
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
