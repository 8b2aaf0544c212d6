//! The evaluator's view of the catalog. An evaluator's session holds only
//! DESIGN's public tables, each a view over the full catalog (built in a
//! session of its own, never reachable from the evaluator's) that keeps
//! their programmes' rows, replaces every participant id by a keyed
//! pseudonym, drops `recorded_by`, and leaves out participants whose latest
//! evaluation consent, as known at the query's known-at time, is withdrawn.
//! The restriction is in the plan, not in the SQL text, so no join, union,
//! subquery, CTE or `information_schema` query can reach around it.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::DataType;
use datafusion::catalog::view::ViewTable;
use datafusion::common::{JoinType, Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, cast, ident,
};
use datafusion::prelude::SessionContext;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use utfall_events::ProgramName;

use crate::catalog::{self, CatalogTable};
use crate::{QueryError, engine};

/// Columns no evaluator sees: who recorded an event is staff data.
const HIDDEN: [&str; 1] = ["recorded_by"];

/// Whom an evaluator's session answers for.
#[derive(Clone)]
pub struct Evaluation {
    pub programmes: Vec<ProgramName>,
    key: Arc<[u8]>,
}

impl fmt::Debug for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("Evaluation")
            .field("programmes", &self.programmes)
            .finish()
    }
}

impl Evaluation {
    pub fn new(programmes: Vec<ProgramName>, key: &[u8]) -> Self {
        Self {
            programmes,
            key: key.into(),
        }
    }

    /// What tells one evaluator's view from another's.
    pub(crate) fn identity(&self) -> (Vec<ProgramName>, Arc<[u8]>) {
        (self.programmes.clone(), self.key.clone())
    }

    /// The pseudonym of `participant`: HMAC-SHA-256 under the deployment's
    /// key, 128 bits in hex. Stable for a key; no one without it can
    /// compute or reverse one.
    pub fn pseudonym(&self, participant: &str) -> String {
        pseudonym(&self.key, participant)
    }

    /// A session over `full`'s catalog restricted as this module says.
    pub(crate) async fn restrict(&self, full: &SessionContext) -> Result<SessionContext, QueryError> {
        let config = full
            .copied_config()
            .with_information_schema(true)
            .with_default_catalog_and_schema("datafusion", "public");
        let ctx = engine::session(config, full.runtime_env());
        datafusion_functions_json::register_all(&mut *ctx.state_ref().write())?;
        let udf = Arc::new(ScalarUDF::new_from_impl(Pseudonym { key: self.key.clone() }));
        let withdrawn = full.table("internal.withdrawn_consent").await?;
        for name in catalog::TABLES {
            let table = full.table(name).await?;
            let has_participant = table.schema().fields().iter().any(|f| f.name() == "participant");
            let table = if has_participant {
                table.join(
                    withdrawn.clone(),
                    JoinType::LeftAnti,
                    &["program", "participant"],
                    &["withdrawn_program", "withdrawn_participant"],
                    None,
                )?
            } else {
                table
            };
            let columns: Vec<Expr> = table
                .schema()
                .fields()
                .iter()
                .filter(|f| !HIDDEN.contains(&f.name().as_str()))
                .map(|f| match f.name().as_str() {
                    "participant" => udf
                        .call(vec![cast(ident("participant"), DataType::Utf8)])
                        .alias("participant"),
                    other => ident(other),
                })
                .collect();
            let plan = table.select(columns)?.into_unoptimized_plan();
            ctx.register_table(name, Arc::new(CatalogTable(Arc::new(ViewTable::new(plan, None)))))?;
        }
        Ok(ctx)
    }
}

fn pseudonym(key: &[u8], participant: &str) -> String {
    // HMAC takes a key of any length; the error case cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(participant.as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `pseudonym(participant)`, holding the key. It exists only inside the
/// evaluator's views: the evaluator cannot call it.
#[derive(PartialEq, Eq, Hash)]
struct Pseudonym {
    key: Arc<[u8]>,
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonym")
    }
}

static SIGNATURE: std::sync::LazyLock<Signature> =
    std::sync::LazyLock::new(|| Signature::exact(vec![DataType::Utf8], Volatility::Immutable));

impl ScalarUDFImpl for Pseudonym {
    fn name(&self) -> &str {
        "pseudonym"
    }
    fn signature(&self) -> &Signature {
        &SIGNATURE
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [ids] = args.args.as_slice() else {
            return exec_err!("pseudonym takes one argument");
        };
        let ids = ids.to_array(args.number_rows)?;
        let Some(ids) = ids.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("pseudonym takes text");
        };
        let pseudonyms: StringArray = ids.iter().map(|id| id.map(|id| pseudonym(&self.key, id))).collect();
        Ok(ColumnarValue::Array(Arc::new(pseudonyms) as ArrayRef))
    }
}
