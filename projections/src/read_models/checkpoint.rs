//! Where a read-model projector stands. One projector may fold every
//! programme (checkpoint `read_models`), or several processes may each fold
//! some programmes (`utfall project --programs`), with a checkpoint per
//! programme (`read_models/<programme>`). A programme with a checkpoint of
//! its own is left to its projector by the every-programme one, so both
//! kinds can run side by side and no event is folded twice.
//!
//! A programme's first checkpoint starts where the every-programme
//! projector stands: everything before it is folded already. In PostgreSQL
//! that hand-over and the every-programme projector's pages take one
//! advisory lock, so neither folds what the other has; projectors of one
//! programme lock its checkpoint row. SQLite lets one writer in at a time.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AnyConnection, Row};

use crate::ProjectionError;

/// The every-programme projector's checkpoint.
const ALL: &str = "read_models";
/// Prefix of a programme's own checkpoint.
const PROGRAMME: &str = "read_models/";

/// PostgreSQL advisory lock key ("utfall" + 1): held by the every-programme
/// projector's page and by a programme's hand-over.
const HAND_OVER_LOCK: i64 = 0x7574_6661_6c6d;

/// Which programmes a projector folds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every programme without a projector of its own.
    #[default]
    All,
    /// These programmes only, each with its own checkpoint.
    Programs(BTreeSet<String>),
}

/// A page's standing: where each folded programme stands, for picking the
/// events to fold.
pub struct Standing {
    scope: Scope,
    /// Scope `All`: the programmes folded by projectors of their own.
    taken: BTreeSet<String>,
    /// Scope `Programs`: where each of them stands.
    positions: HashMap<String, u64>,
    /// The lowest position of the scope: pages are read from it.
    pub position: u64,
}

impl Standing {
    /// Whether an event of `program` at `position` is this page's to fold.
    pub fn folds(&self, program: &str, position: u64) -> bool {
        match &self.scope {
            Scope::All => position > self.position && !self.taken.contains(program),
            Scope::Programs(_) => self.positions.get(program).is_some_and(|p| position > *p),
        }
    }
}

/// Where the scope stands as `conn` sees it, without locking: the lowest
/// position of its programmes.
pub async fn position(conn: &mut AnyConnection, scope: &Scope) -> Result<u64, ProjectionError> {
    let all = stored(conn, ALL).await?.unwrap_or(0);
    match scope {
        Scope::All => Ok(all),
        Scope::Programs(programs) => {
            let mut lowest = u64::MAX;
            for program in programs {
                lowest = lowest.min(stored(conn, &own(program)).await?.unwrap_or(all));
            }
            Ok(lowest)
        }
    }
}

/// Locks the scope's checkpoints for a page in transaction `tx` and reads
/// them, handing programmes over to their own checkpoint where needed.
pub async fn lock(tx: &mut AnyConnection, scope: &Scope, postgres: bool) -> Result<Standing, ProjectionError> {
    match scope {
        Scope::All => {
            if postgres {
                hand_over_lock(tx).await?;
            }
            let position = stored(tx, ALL).await?.unwrap_or(0);
            let mut taken = BTreeSet::new();
            for (name, _) in all(tx).await? {
                if let Some(program) = programme(&name) {
                    taken.insert(program.to_string());
                }
            }
            Ok(Standing {
                scope: scope.clone(),
                taken,
                positions: HashMap::new(),
                position,
            })
        }
        Scope::Programs(programs) => {
            let mut positions = own_positions(tx, programs, postgres).await?;
            if positions.len() < programs.len() {
                if postgres {
                    hand_over_lock(tx).await?;
                }
                let all = stored(tx, ALL).await?.unwrap_or(0);
                for program in programs.iter().filter(|p| !positions.contains_key(*p)) {
                    sqlx::query(
                        "INSERT INTO checkpoints (projector, last_position) VALUES ($1, $2) ON CONFLICT (projector) DO NOTHING",
                    )
                    .bind(own(program))
                    .bind(all as i64)
                    .execute(&mut *tx)
                    .await?;
                }
                positions = own_positions(tx, programs, postgres).await?;
            }
            let position = positions.values().copied().min().unwrap_or(0);
            Ok(Standing {
                scope: scope.clone(),
                taken: BTreeSet::new(),
                positions,
                position,
            })
        }
    }
}

/// Moves the scope's checkpoints to `last`, in the page's transaction.
pub async fn advance(tx: &mut AnyConnection, standing: &Standing, last: u64) -> Result<(), ProjectionError> {
    let names: Vec<String> = match &standing.scope {
        Scope::All => vec![ALL.to_string()],
        Scope::Programs(programs) => programs.iter().map(|p| own(p)).collect(),
    };
    for name in names {
        sqlx::query(
            "INSERT INTO checkpoints (projector, last_position) VALUES ($1, $2)
             ON CONFLICT (projector) DO UPDATE SET last_position = excluded.last_position
             WHERE checkpoints.last_position < excluded.last_position",
        )
        .bind(name)
        .bind(last as i64)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Every read-model checkpoint: the every-programme projector's (when it
/// has folded anything) and each programme's own, by name.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<(String, u64)>, ProjectionError> {
    sqlx::query("SELECT projector, last_position FROM checkpoints WHERE projector = $1 OR projector LIKE 'read_models/%' ORDER BY projector")
        .bind(ALL)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| Ok((row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)? as u64)))
        .collect()
}

/// The programme a checkpoint of a programme's own names.
pub fn programme(name: &str) -> Option<&str> {
    name.strip_prefix(PROGRAMME)
}

fn own(program: &str) -> String {
    format!("{PROGRAMME}{program}")
}

async fn stored(conn: &mut AnyConnection, name: &str) -> Result<Option<u64>, ProjectionError> {
    let row = sqlx::query("SELECT last_position FROM checkpoints WHERE projector = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.map(|p| p as u64))
}

/// The programmes' own checkpoints that exist, locked for the page in
/// PostgreSQL (a second projector of one programme waits its turn).
async fn own_positions(
    tx: &mut AnyConnection,
    programs: &BTreeSet<String>,
    postgres: bool,
) -> Result<HashMap<String, u64>, ProjectionError> {
    let lock = if postgres { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT last_position FROM checkpoints WHERE projector = $1{lock}");
    let mut positions = HashMap::new();
    for program in programs {
        let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(own(program))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = row {
            positions.insert(program.clone(), row.try_get::<i64, _>(0)? as u64);
        }
    }
    Ok(positions)
}

async fn hand_over_lock(tx: &mut AnyConnection) -> Result<(), ProjectionError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(HAND_OVER_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
