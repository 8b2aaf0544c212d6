SELECT e.position, e.event_id, e.program, e.participant, e.version, e.type, e.occurred_on, e.recorded_at,
       e.recorded_by, r.event_id IS NOT NULL AS retracted, e.data
FROM internal.known_events e
LEFT JOIN internal.retracted_events r ON r.event_id = e.event_id
