-- education_share: participants who had status `education` at any time up
-- to the as-of date, out of every participant enrolled by then.
SELECT p.program,
       count(e.participant) AS numerator,
       count(*) AS denominator
FROM participants p
LEFT JOIN (SELECT DISTINCT program, participant FROM status_spells WHERE status = 'education') e
  ON e.program = p.program AND e.participant = p.participant
GROUP BY p.program
