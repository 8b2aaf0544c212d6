SELECT program, participant, occurred_on, kind, staff_role, attended, minutes
FROM internal.contact_records
