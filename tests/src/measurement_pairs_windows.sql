-- Each participant's first and last composite per instrument (by date,
-- then wave, then composite), once measured at least twice, from
-- `measurement_scores` with window functions: what the lake projector
-- keeps as `internal.measurement_pairs`, in SQL that DuckDB and PostgreSQL
-- run too (they lack ordered first_value/last_value aggregates).
WITH ordered AS (
  SELECT program, participant, instrument, composite,
         row_number() OVER (PARTITION BY program, participant, instrument
                            ORDER BY occurred_on, wave, composite) AS from_first,
         row_number() OVER (PARTITION BY program, participant, instrument
                            ORDER BY occurred_on DESC, wave DESC, composite DESC) AS from_last,
         count(*) OVER (PARTITION BY program, participant, instrument) AS measured
  FROM measurement_scores
)
SELECT program, participant, instrument,
       max(CASE WHEN from_first = 1 THEN composite END) AS first_composite,
       max(CASE WHEN from_last = 1 THEN composite END) AS last_composite
FROM ordered WHERE measured >= 2
GROUP BY program, participant, instrument
