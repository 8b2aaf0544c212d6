-- Paired COOP/WONCA change (first vs last composite) by consultant.
WITH ordered AS (
  SELECT p.program, p.consultant, m.participant, m.composite,
         row_number() OVER (PARTITION BY m.program, m.participant ORDER BY m.occurred_on) AS from_first,
         row_number() OVER (PARTITION BY m.program, m.participant ORDER BY m.occurred_on DESC) AS from_last,
         count(*) OVER (PARTITION BY m.program, m.participant) AS measured
  FROM measurement_scores m JOIN participants p ON p.program = m.program AND p.participant = m.participant
  WHERE m.instrument = 'coop_wonca'
), pairs AS (
  SELECT program, consultant, participant,
         max(CASE WHEN from_first = 1 THEN composite END) AS first_composite,
         max(CASE WHEN from_last = 1 THEN composite END) AS last_composite
  FROM ordered WHERE measured >= 2 GROUP BY program, consultant, participant
)
SELECT program, consultant, count(*) AS paired, avg(first_composite) AS mean_first, avg(last_composite) AS mean_last,
       sum(CASE WHEN last_composite < first_composite THEN 1 ELSE 0 END) AS improved
FROM pairs GROUP BY program, consultant ORDER BY program, consultant
