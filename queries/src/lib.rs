//! The DataFusion catalog over the lake and read models, outcome metric
//! definitions, cohort outcomes against targets, statistics, disclosure
//! control and extract rendering. Filled by the analytics issue; depends on
//! `utfall-events` and `utfall-projections`.
