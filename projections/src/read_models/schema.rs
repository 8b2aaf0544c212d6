//! The read-model tables (DESIGN's catalog, less the lake-only details).
//! One DDL serves PostgreSQL and SQLite: dates are ISO `YYYY-MM-DD` text
//! (sortable, and what sqlx's database-independent driver can carry),
//! `recorded_at` is RFC 3339 text, `target_groups` a JSON array. Booleans
//! are `BOOLEAN` in PostgreSQL and `INTEGER` (0/1) in SQLite, since the
//! database-independent driver cannot read SQLite's `BOOLEAN` columns.

pub const TABLES: [&str; 9] = [
    "programs",
    "targets",
    "events",
    "participants",
    "status_spells",
    "measurements",
    "measurement_scores",
    "contacts",
    "services",
];

/// Tables kept beside the catalog's: the projector's checkpoint, and the
/// programmes' retention rules (which decide erasures, and are no figure).
pub const OWN_TABLES: [&str; 2] = ["checkpoints", "retention_rules"];

/// Tables that hold one participant's rows, rebuilt for that participant
/// when one of their events is retracted.
pub const PARTICIPANT_TABLES: [&str; 6] = [
    "participants",
    "status_spells",
    "measurements",
    "measurement_scores",
    "contacts",
    "services",
];

pub const SCHEMA: [&str; 18] = [
    "CREATE TABLE IF NOT EXISTS checkpoints (
        projector TEXT PRIMARY KEY,
        last_position BIGINT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS retention_rules (
        program TEXT PRIMARY KEY,
        months_after_exit BIGINT NOT NULL,
        set_on TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS programs (
        program TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        organisation TEXT NOT NULL,
        country TEXT NOT NULL,
        starts_on TEXT NOT NULL,
        ends_on TEXT,
        planned_participants BIGINT,
        budget_amount DOUBLE PRECISION,
        budget_currency TEXT
    )",
    "CREATE TABLE IF NOT EXISTS targets (
        program TEXT NOT NULL,
        metric TEXT NOT NULL,
        op TEXT NOT NULL,
        value DOUBLE PRECISION NOT NULL,
        set_on TEXT NOT NULL,
        PRIMARY KEY (program, metric)
    )",
    "CREATE TABLE IF NOT EXISTS events (
        position BIGINT PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,
        program TEXT NOT NULL,
        participant TEXT,
        version BIGINT NOT NULL,
        type TEXT NOT NULL,
        occurred_on TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        recorded_by TEXT,
        retracted {bool} NOT NULL,
        data TEXT NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS participants (
        program TEXT NOT NULL,
        participant TEXT NOT NULL,
        enrolled_on TEXT NOT NULL,
        exited_on TEXT,
        exit_reason TEXT,
        birth_year BIGINT,
        gender TEXT,
        referral_source TEXT,
        target_groups TEXT,
        income_source TEXT,
        prior_psychiatric_diagnosis {bool},
        physical_challenges {bool},
        consultant TEXT,
        current_status TEXT,
        current_outcome_group TEXT,
        current_status_since TEXT,
        first_job_on TEXT,
        first_education_on TEXT,
        psychiatric_treatment_on TEXT,
        PRIMARY KEY (program, participant)
    )",
    "CREATE TABLE IF NOT EXISTS status_spells (
        program TEXT NOT NULL,
        participant TEXT NOT NULL,
        status TEXT NOT NULL,
        outcome_group TEXT NOT NULL,
        from_on TEXT NOT NULL,
        to_on TEXT,
        hours_per_week DOUBLE PRECISION,
        pathway TEXT
    )",
    "CREATE TABLE IF NOT EXISTS measurements (
        program TEXT NOT NULL,
        participant TEXT NOT NULL,
        instrument TEXT NOT NULL,
        wave BIGINT,
        occurred_on TEXT NOT NULL,
        item TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS measurement_scores (
        program TEXT NOT NULL,
        participant TEXT NOT NULL,
        instrument TEXT NOT NULL,
        wave BIGINT,
        occurred_on TEXT NOT NULL,
        composite DOUBLE PRECISION NOT NULL
    )",
    "CREATE TABLE IF NOT EXISTS contacts (
        program TEXT NOT NULL,
        participant TEXT NOT NULL,
        occurred_on TEXT NOT NULL,
        kind TEXT NOT NULL,
        staff_role TEXT,
        attended {bool} NOT NULL,
        minutes BIGINT
    )",
    "CREATE TABLE IF NOT EXISTS services (
        program TEXT NOT NULL,
        participant TEXT NOT NULL,
        service TEXT NOT NULL,
        from_on TEXT NOT NULL,
        to_on TEXT
    )",
    // Every participant-scoped read is by (program, participant).
    "CREATE INDEX IF NOT EXISTS events_by_stream ON events (program, participant, position)",
    "CREATE INDEX IF NOT EXISTS status_spells_by_participant ON status_spells (program, participant)",
    "CREATE INDEX IF NOT EXISTS measurements_by_participant ON measurements (program, participant)",
    "CREATE INDEX IF NOT EXISTS measurement_scores_by_participant ON measurement_scores (program, participant)",
    "CREATE INDEX IF NOT EXISTS contacts_by_participant ON contacts (program, participant, occurred_on)",
    "CREATE INDEX IF NOT EXISTS services_by_participant ON services (program, participant)",
    "CREATE INDEX IF NOT EXISTS participants_by_consultant ON participants (program, consultant)",
];
