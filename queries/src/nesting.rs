//! A bound on how deeply a query nests. Planning, optimising and executing
//! walk a query recursively, so a short SQL text (`1+1+…` with a few hundred
//! terms, a chain of UNIONs or ORs, nested subqueries) can be deep enough to
//! exhaust a thread's stack and abort the whole process. The parser guards
//! itself; every query is checked here before anything else walks it, and
//! the depth allowed fits the stack the `utfall` binary gives its threads.
//! The parsed tree is also dropped recursively, so the text's length is
//! bounded too, before it is parsed: a text of this length, however it
//! nests, is parsed, refused and dropped within that stack.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as Parsed;
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Statement, TableFactor, Visit, Visitor};

use crate::QueryError;

/// Deepest nesting of expressions, subqueries, joins and set operations.
pub const MAX_DEPTH: usize = 200;

/// Longest SQL text accepted, in bytes.
pub const MAX_SQL_BYTES: usize = 256 << 10;

/// Refuses an SQL text longer than [`MAX_SQL_BYTES`], before it is parsed.
pub fn check_length(sql: &str) -> Result<(), QueryError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(QueryError::Sql(format!(
            "the SQL text is {} bytes long; at most {MAX_SQL_BYTES} are accepted",
            sql.len()
        )));
    }
    Ok(())
}

/// Refuses a statement that nests deeper than [`MAX_DEPTH`].
pub fn check(statement: &Parsed) -> Result<(), QueryError> {
    match statement {
        Parsed::Statement(statement) => check_statement(statement),
        Parsed::Explain(explain) => check(&explain.statement),
        // Refused as writes once planned; COPY's query is checked first.
        Parsed::CopyTo(copy) => match &copy.source {
            datafusion::sql::parser::CopyToSource::Query(query) => check_statement(&Statement::Query(query.clone())),
            datafusion::sql::parser::CopyToSource::Relation(_) => Ok(()),
        },
        Parsed::CreateExternalTable(_) | Parsed::Reset(_) => Ok(()),
    }
}

/// Refuses a parsed SQL statement that nests deeper than [`MAX_DEPTH`].
pub fn check_statement(statement: &Statement) -> Result<(), QueryError> {
    let mut depth = Depth::default();
    match statement.visit(&mut depth) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(QueryError::Sql(format!(
            "the query nests more than {MAX_DEPTH} levels deep (expressions, subqueries, joins or \
             UNION/EXCEPT/INTERSECT); write long OR chains as IN (…) and split very long queries"
        ))),
    }
}

#[derive(Default)]
struct Depth {
    now: usize,
}

impl Depth {
    fn enter(&mut self, extra: usize) -> ControlFlow<()> {
        self.now += 1;
        if self.now + extra > MAX_DEPTH {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        // A chain of set operations nests without passing through a query
        // or an expression: measure it before the visit walks down it.
        self.enter(set_depth(&query.body, 0))
    }
    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.enter(0)
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.leave()
    }
    fn pre_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.enter(0)
    }
    fn post_visit_table_factor(&mut self, _: &TableFactor) -> ControlFlow<()> {
        self.leave()
    }
}

/// How deep the set operations of `body` nest, counted no further than just
/// past [`MAX_DEPTH`].
fn set_depth(body: &SetExpr, above: usize) -> usize {
    if above > MAX_DEPTH {
        return above;
    }
    match body {
        SetExpr::SetOperation { left, right, .. } => set_depth(left, above + 1).max(set_depth(right, above + 1)),
        _ => above,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::sql::parser::DFParser;

    use super::*;

    fn nests_too_deep(sql: &str) -> bool {
        let statement = DFParser::parse_sql(sql)
            .expect("parses")
            .pop_front()
            .expect("one statement");
        check(&statement).is_err()
    }

    #[test]
    fn ordinary_queries_pass_and_every_deep_shape_is_refused() {
        let chain = |n: usize, sep: &str, term: &str| vec![term; n].join(sep);
        assert!(!nests_too_deep(
            "SELECT a, count(*) FROM t WHERE b IN (1, 2, 3) GROUP BY a"
        ));
        assert!(!nests_too_deep(&format!("SELECT {}", chain(100, "+", "1"))));
        assert!(nests_too_deep(&format!("SELECT {}", chain(250, "+", "1"))));
        assert!(nests_too_deep(&format!(
            "SELECT 1 WHERE {}",
            chain(2000, " OR ", "1=1")
        )));
        assert!(nests_too_deep(&format!("SELECT {}", chain(400, "||", "'a'"))));
        assert!(nests_too_deep(&chain(2000, " UNION ALL ", "SELECT 1")));
        assert!(!nests_too_deep(&chain(50, " UNION ALL ", "SELECT 1")));
        assert!(nests_too_deep(&format!("EXPLAIN SELECT {}", chain(300, "-", "1"))));
    }
}
