//! Rows waiting to be inserted, written as multi-row `INSERT`s so a page of
//! events costs a few statements instead of one per event.

use serde::Serialize;
use sqlx::AnyConnection;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::ProjectionError;

/// One value of a row, in the few types both databases share here.
#[derive(Clone, Debug)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
    Real(Option<f64>),
    Bool(Option<bool>),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(Some(s.to_string()))
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(Some(s))
    }
}

impl From<Option<String>> for Cell {
    fn from(s: Option<String>) -> Self {
        Cell::Text(s)
    }
}

impl From<Option<i64>> for Cell {
    fn from(n: Option<i64>) -> Self {
        Cell::Int(n)
    }
}

impl From<i64> for Cell {
    fn from(n: i64) -> Self {
        Cell::Int(Some(n))
    }
}

impl From<Option<f64>> for Cell {
    fn from(x: Option<f64>) -> Self {
        Cell::Real(x)
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Real(Some(x))
    }
}

impl From<Option<bool>> for Cell {
    fn from(b: Option<bool>) -> Self {
        Cell::Bool(b)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Bool(Some(b))
    }
}

pub fn bind<'q>(query: Query<'q, sqlx::Any, AnyArguments>, cell: Cell) -> Query<'q, sqlx::Any, AnyArguments> {
    match cell {
        Cell::Text(v) => query.bind(v),
        Cell::Int(v) => query.bind(v),
        Cell::Real(v) => query.bind(v),
        Cell::Bool(v) => query.bind(v),
    }
}

/// Parameters per statement; under SQLite's limit of 32766 and
/// PostgreSQL's of 65535.
const MAX_PARAMETERS: usize = 30_000;

/// Placeholders in the order they appear in a statement's text: `$1, $2, …`
/// for PostgreSQL, `?` for SQLite. (SQLite finds a `$N` parameter by a
/// search through the statement's names, once when it is prepared and once
/// when it is bound: quadratic in a multi-row statement's parameters.)
pub struct Placeholders {
    postgres: bool,
    next: usize,
}

impl Placeholders {
    pub fn new(conn: &AnyConnection) -> Self {
        Self {
            postgres: conn.backend_name() == "PostgreSQL",
            next: 0,
        }
    }

    pub fn one(&mut self) -> String {
        self.next += 1;
        if self.postgres { format!("${}", self.next) } else { "?".into() }
    }

    /// `n` placeholders, comma-separated.
    pub fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.one()).collect::<Vec<_>>().join(", ")
    }
}

/// Rows for one table.
pub struct Rows {
    table: &'static str,
    columns: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

impl Rows {
    pub const fn new(table: &'static str, columns: &'static [&'static str]) -> Self {
        Self {
            table,
            columns,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}", self.table);
        self.rows.push(row);
    }

    pub async fn flush(&mut self, conn: &mut AnyConnection) -> Result<(), ProjectionError> {
        let width = self.columns.len();
        let per_statement = (MAX_PARAMETERS / width).max(1);
        let rows = std::mem::take(&mut self.rows);
        for chunk in rows.chunks(per_statement) {
            let mut placeholders = Placeholders::new(conn);
            let values: Vec<String> = chunk.iter().map(|_| format!("({})", placeholders.list(width))).collect();
            // Table and column names are constants of this crate.
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {}",
                self.table,
                self.columns.join(", "),
                values.join(", ")
            );
            // Not kept prepared: the text changes with the row count, and
            // sqlx 0.9's database-independent driver types a NULL f64 as a
            // 4-byte float, which PostgreSQL would keep for later values.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
            for row in chunk {
                for cell in row {
                    query = bind(query, cell.clone());
                }
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// The wire name of a closed value (`employed`, `coop_wonca`, `>=` …).
pub fn code<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => other.map(|v| v.to_string()).unwrap_or_default(),
    }
}

