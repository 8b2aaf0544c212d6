SELECT program, participant, occurred_on,
       json_get_str(data, 'kind') AS kind,
       json_get_str(data, 'staff_role') AS staff_role,
       coalesce(json_get_bool(data, 'attended'), true) AS attended,
       json_get_int(data, 'minutes') AS minutes
FROM internal.in_force WHERE type = 'contact_recorded'
