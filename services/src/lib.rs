//! utfall's services: configuration, the CLI commands, the HTTP API and
//! process wiring. The binary (`main.rs`) only parses the command line and
//! dispatches here, so tests and benchmarks can drive the same code.

pub mod access;
pub mod analytics;
pub mod cli;
pub mod demo;
pub mod erasure;
pub mod extract;
pub mod http;
pub mod import;
pub mod indicators;
pub mod keys;
pub mod migrate;
pub mod pg;
pub mod project;
pub mod quarantine;
pub mod retention;
pub mod schedule;
pub mod store;
pub mod synthetic;
pub mod tls;
