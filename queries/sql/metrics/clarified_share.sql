-- clarified_share: exited participants whose exit reason was `completed` or
-- `transferred` and whose last status was in outcome group `job`,
-- `education`, `activity` or `benefit`, out of every exited participant.
SELECT program,
       sum(CASE WHEN exit_reason IN ('completed', 'transferred')
                 AND current_outcome_group IN ('job', 'education', 'activity', 'benefit')
            THEN 1 ELSE 0 END) AS numerator,
       count(*) AS denominator
FROM participants
WHERE exited_on IS NOT NULL
GROUP BY program
