-- job_share: participants who had a status in outcome group `job` at any
-- time up to the as-of date, out of every participant enrolled by then.
SELECT p.program,
       count(j.participant) AS numerator,
       count(*) AS denominator
FROM participants p
LEFT JOIN (SELECT DISTINCT program, participant FROM status_spells WHERE outcome_group = 'job') j
  ON j.program = p.program AND j.participant = p.participant
GROUP BY p.program
