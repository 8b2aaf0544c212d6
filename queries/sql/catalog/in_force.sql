-- Internal: the events every table but `events` is folded from.
SELECT * FROM events WHERE NOT retracted
