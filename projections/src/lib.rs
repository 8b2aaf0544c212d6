//! Projectors that fold the event log into read models (PostgreSQL or
//! SQLite) and into the Arrow/Parquet analytics lake, with checkpoints and
//! rebuild. Filled by the projections issue; depends on `utfall-events` only.
