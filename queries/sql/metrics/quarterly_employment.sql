-- quarterly_employment (the IPS convention): per programme and calendar
-- quarter, the participants served in the quarter (enrolled by its end and
-- not exited before its start) and those of them who held a status in
-- outcome group `job` at any time in the quarter while served. The
-- quarter holding the as-of date counts up to that date. A quarter is
-- numbered year * 4 + (month - 1) / 3; {as_of} is the as-of date.
WITH served AS (
    SELECT program, participant, enrolled_on AS served_from,
           coalesce(exited_on, {as_of}) AS served_to
    FROM participants
),
-- Each job spell, cut to the days its participant was served (a spell
-- runs to the day before `to_on`; a spell replaced on its first day is none).
worked AS (
    SELECT s.program, s.participant,
           greatest(j.from_on, s.served_from) AS worked_from,
           least(coalesce(j.to_on - INTERVAL '1 day', s.served_to), s.served_to) AS worked_to
    FROM served s
    JOIN status_spells j ON j.program = s.program AND j.participant = s.participant
    WHERE j.outcome_group = 'job' AND (j.to_on IS NULL OR j.to_on > j.from_on)
      AND j.from_on <= s.served_to AND (j.to_on IS NULL OR j.to_on > s.served_from)
),
served_quarters AS (
    SELECT program, participant,
           unnest(range(CAST(date_part('year', served_from) AS BIGINT) * 4 + (CAST(date_part('month', served_from) AS BIGINT) - 1) / 3,
                        CAST(date_part('year', served_to) AS BIGINT) * 4 + (CAST(date_part('month', served_to) AS BIGINT) - 1) / 3 + 1)) AS quarter
    FROM served
),
worked_quarters AS (
    SELECT DISTINCT program, participant, quarter
    FROM (SELECT program, participant,
                 unnest(range(CAST(date_part('year', worked_from) AS BIGINT) * 4 + (CAST(date_part('month', worked_from) AS BIGINT) - 1) / 3,
                              CAST(date_part('year', worked_to) AS BIGINT) * 4 + (CAST(date_part('month', worked_to) AS BIGINT) - 1) / 3 + 1)) AS quarter
          FROM worked)
)
SELECT s.program, s.quarter, count(*) AS served, count(w.participant) AS employed
FROM served_quarters s
LEFT JOIN worked_quarters w
       ON w.program = s.program AND w.participant = s.participant AND w.quarter = s.quarter
GROUP BY s.program, s.quarter
ORDER BY s.program, s.quarter
