-- measurement_change.sql (queries/sql/metrics/) written with windows instead
-- of ordered first_value/last_value aggregates, which DuckDB and
-- PostgreSQL lack: the same figures, for comparing engines on one SQL.
WITH ordered AS (
  SELECT m.program, m.participant, m.instrument, m.composite,
         row_number() OVER (PARTITION BY m.program, m.participant, m.instrument
                            ORDER BY m.occurred_on, m.wave, m.composite) AS from_first,
         row_number() OVER (PARTITION BY m.program, m.participant, m.instrument
                            ORDER BY m.occurred_on DESC, m.wave DESC, m.composite DESC) AS from_last,
         count(*) OVER (PARTITION BY m.program, m.participant, m.instrument) AS measured
  FROM measurement_scores m
  JOIN participants p ON p.program = m.program AND p.participant = m.participant
), pairs AS (
  SELECT program, participant, instrument,
         max(CASE WHEN from_first = 1 THEN composite END) AS first_composite,
         max(CASE WHEN from_last = 1 THEN composite END) AS last_composite
  FROM ordered WHERE measured >= 2
  GROUP BY program, participant, instrument
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
