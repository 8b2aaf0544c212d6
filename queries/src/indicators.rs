//! Programme-defined indicators (an `indicator_defined` event): a share
//! whose numerator and denominator are SQL conditions a programme wrote,
//! so it can count what it cares about without a release.
//!
//! A condition is evaluated over one row of `participants` (with `as_of`,
//! the report's as-of date), so an indicator counts each participant once
//! by construction. Its subqueries may read only the catalog's tables, and
//! it is counted in a catalog holding its own programme only: it can never
//! see another programme's rows. Both conditions are checked when the
//! event is recorded (parsed, tables, planned), with the line and column of
//! any problem.

use std::collections::BTreeMap;
use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Spanned, TableFactor, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Location;
use utfall_events::vocabulary::IndicatorDefined;

use crate::catalog::TABLES;
use crate::cohorts::Cohorts;
use crate::engine::run;
use crate::values::strings;
use crate::{Analytics, QueryError, Snapshot};
use crate::{nesting, read_only};

/// An indicator as last defined by the snapshot's known-at time.
#[derive(Clone, Debug, PartialEq)]
pub struct Indicator {
    pub program: String,
    pub name: String,
    pub description: String,
    pub numerator: String,
    /// `None`: every enrolled participant.
    pub denominator: Option<String>,
}

/// An indicator's counts: (numerator, denominator) by programme, and by
/// `<programme>/<cohort>` when cohorts were asked for. `None` when its SQL
/// failed when run (a scalar subquery finding two rows, a bad cast).
#[derive(Clone, Debug)]
pub struct Counted {
    pub indicator: Indicator,
    pub counts: Option<BTreeMap<String, (u64, u64)>>,
}

/// `participants` as a condition sees it: each row with `as_of`.
const POPULATION: &str = "(SELECT p.*, s.as_of FROM participants p CROSS JOIN internal.snapshot s) participants";

/// Who a count takes: the denominator's condition, and with `numerator`,
/// the numerator's too. Each condition starts a line of its own, so a
/// planning error's line tells the condition's line.
fn condition(denominator: Option<&str>, numerator: Option<&str>) -> String {
    let mut sql = format!("(\n{}\n)", denominator.unwrap_or("TRUE"));
    if let Some(numerator) = numerator {
        sql += &format!(" AND (\n{numerator}\n)");
    }
    sql
}

impl Analytics {
    /// The indicators defined for each programme the engine sees (`only`:
    /// that one's), as known at the snapshot's known-at time.
    pub async fn indicators(&self, snapshot: &Snapshot, only: Option<&str>) -> Result<Vec<Indicator>, QueryError> {
        self.within_limit(|ctx| async move { defined(&ctx, only).await }, snapshot)
            .await
    }

    /// The problems of an indicator's definition, as (field, message):
    /// each condition must parse as an SQL condition, read only the
    /// catalog's tables, and plan over the catalog (known columns, a
    /// true/false value, subqueries that give one row per participant).
    pub async fn check_indicator(&self, definition: &IndicatorDefined) -> Result<Vec<(String, String)>, QueryError> {
        let ctx = self.context(&Snapshot::default()).await?;
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .sql_parser
            .collect_spans = true;
        let mut problems = Vec::new();
        let conditions = [
            ("denominator", definition.denominator.as_deref()),
            ("numerator", Some(definition.numerator.as_str())),
        ];
        for (field, text) in conditions {
            let Some(text) = text else { continue };
            let problem = match parse(text) {
                Err(problem) => Some(problem),
                Ok(()) => planning_problem(&ctx, &condition(Some(text), None)).await?,
            };
            if let Some(problem) = problem {
                problems.push((format!("data.{field}"), problem));
            }
        }
        Ok(problems)
    }
}

/// Parses a condition on its own and refuses anything but the catalog's
/// tables in it; the message names the line and column.
fn parse(text: &str) -> Result<(), String> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect).try_with_sql(text).map_err(parser_problem)?;
    let expr = parser.parse_expr().map_err(parser_problem)?;
    let rest = parser.peek_token();
    if rest.token != datafusion::sql::sqlparser::tokenizer::Token::EOF {
        return Err(at(
            rest.span.start,
            &format!("expected the end of the condition, found {}", rest.token),
        ));
    }
    let mut tables = CatalogTablesOnly::default();
    if let ControlFlow::Break((location, found)) = expr.visit(&mut tables) {
        return Err(at(
            location,
            &format!(
                "{found} is not one of the catalog's tables; a condition may read only {}",
                TABLES.join(", ")
            ),
        ));
    }
    Ok(())
}

fn parser_problem(e: ParserError) -> String {
    // The parser's own message ends in "at Line: L, Column: C".
    match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "the condition nests too deeply".into(),
    }
}

fn at(location: Location, message: &str) -> String {
    if location.line == 0 {
        return message.to_string();
    }
    format!("line {}, column {}: {message}", location.line, location.column)
}

/// Stops at the first table factor that is not a catalog table by name.
#[derive(Default)]
struct CatalogTablesOnly;

impl Visitor for CatalogTablesOnly {
    type Break = (Location, String);

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Self::Break> {
        match factor {
            TableFactor::Table { name, args: None, .. }
                if TABLES.contains(&name.to_string().to_ascii_lowercase().as_str()) =>
            {
                ControlFlow::Continue(())
            }
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            other => {
                let shown = match other {
                    TableFactor::Table { name, .. } => name.to_string(),
                    _ => other.to_string(),
                };
                let shown: String = shown.chars().take(60).collect();
                ControlFlow::Break((other.span().start, format!("{shown:?}")))
            }
        }
    }
}

/// Plans and optimises a count over `condition`: unknown columns, values
/// that are not true/false and subqueries that could give a participant
/// two rows are found here. `None` when it plans.
async fn planning_problem(ctx: &SessionContext, condition: &str) -> Result<Option<String>, QueryError> {
    let sql = format!("SELECT count(*) FROM {POPULATION} WHERE {condition}");
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let planned = async {
        let statement = state.sql_to_statement(&sql, &dialect)?;
        if let Err(e) = nesting::check(&statement) {
            return Ok(Err(e));
        }
        let plan = state.statement_to_plan(statement).await?;
        Ok::<_, DataFusionError>(Ok(state.optimize(&plan)?))
    }
    .await;
    let problem = match planned {
        Ok(Ok(plan)) => read_only::check(&plan).err(),
        Ok(Err(e)) => Some(e),
        Err(e) => {
            let location = located(&e);
            match QueryError::from(e) {
                QueryError::Sql(message) => {
                    // DataFusion's kind of error says nothing to the author, and
                    // its list of every valid field drowns the suggestion.
                    let first_line = message.lines().next().unwrap_or_default();
                    let message = ["Error during planning: ", "Schema error: "]
                        .iter()
                        .fold(first_line, |m, prefix| m.strip_prefix(prefix).unwrap_or(m));
                    return Ok(Some(location.map_or(message.to_string(), |l| at(l, message))));
                }
                other => return Err(other),
            }
        }
    };
    Ok(problem.map(|e| e.to_string()))
}

/// The problem's place in the condition: planning errors carry a span in
/// the generated query, where the condition starts on line 2.
fn located(e: &DataFusionError) -> Option<Location> {
    let span = e.diagnostic()?.span?;
    Some(Location {
        line: span.start.line.saturating_sub(1),
        column: span.start.column,
    })
}

/// The indicators defined for each programme the session sees (`only`:
/// that one), in the order of their names.
async fn defined(ctx: &SessionContext, only: Option<&str>) -> Result<Vec<Indicator>, QueryError> {
    let batches = run(
        ctx,
        "SELECT program, indicator, description, numerator, denominator FROM internal.indicators ORDER BY program, indicator",
    )
    .await?
    .batches;
    let columns = ["program", "indicator", "description", "numerator", "denominator"].map(|c| strings(&batches, c));
    let [program, name, description, numerator, denominator] = columns;
    Ok(program?
        .into_iter()
        .zip(name?)
        .zip(description?)
        .zip(numerator?)
        .zip(denominator?)
        .filter_map(|((((program, name), description), numerator), denominator)| {
            Some(Indicator {
                program: program?,
                name: name?,
                description: description.unwrap_or_default(),
                numerator: numerator?,
                denominator,
            })
        })
        .filter(|i| only.is_none_or(|o| o == i.program))
        .collect())
}

/// Counts `indicator` in `ctx` (a catalog of its programme only), by
/// programme and, with `cohorts`, by cohort.
pub(crate) async fn count(
    ctx: &SessionContext,
    indicator: &Indicator,
    cohorts: Option<&Cohorts>,
) -> Result<BTreeMap<String, (u64, u64)>, QueryError> {
    let mut groups = vec!["program".to_string()];
    groups.extend(cohorts.map(Cohorts::group_sql));
    let mut counts = BTreeMap::new();
    for group in groups {
        let sql = |numerator: Option<&str>| {
            format!(
                "SELECT {group} AS program, count(*) AS n FROM {POPULATION} WHERE {} GROUP BY 1",
                condition(indicator.denominator.as_deref(), numerator)
            )
        };
        let denominators = run(ctx, &sql(None)).await?.batches;
        let numerators = run(ctx, &sql(Some(&indicator.numerator))).await?.batches;
        let numerators: BTreeMap<String, u64> = by_group(&numerators)?.collect();
        for (key, n) in by_group(&denominators)? {
            let k = numerators.get(&key).copied().unwrap_or(0);
            counts.insert(key, (k, n));
        }
    }
    Ok(counts)
}

fn by_group(batches: &[arrow::array::RecordBatch]) -> Result<impl Iterator<Item = (String, u64)>, QueryError> {
    let keys = strings(batches, "program")?;
    let counts = crate::values::ints(batches, "n")?;
    Ok(keys
        .into_iter()
        .zip(counts)
        .filter_map(|(key, n)| Some((key?, n.unwrap_or(0).max(0) as u64))))
}
