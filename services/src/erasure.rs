//! Erasing a participant, for `utfall erase` and
//! `POST /v1/programs/{program}/participants/{participant}/erase`. The log
//! records the erasure and destroys the participant's data key (see
//! `utfall_events::sealing`); the projectors then delete every row of
//! theirs from the read models and the lake. The erasure's event id is
//! derived from the participant, so a repeated or retried erasure stores
//! nothing twice, and one cut short is finished by the next.

use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;
use utfall_events::names::Code;
use utfall_events::vocabulary::ParticipantErased;
use utfall_events::{AppendError, Date, EventData, EventLog, LogError, NewEvent, ProgramName, Pseudonym, StreamKey};
use utfall_projections::follow::catch_up;

use crate::access::Access;
use crate::access::audit::AuditRecord;
use crate::cli::StoreArgs;
use crate::store::{open_lake, open_log, open_read_models};

/// Namespace of erasure event ids (a name-based UUID of the participant).
const ERASURES: Uuid = Uuid::from_u128(0x6a0f_43c1_8d2e_4b57_9e61_0c3d_5f27_a914);

/// What an erasure did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub program: String,
    pub participant: String,
    pub erased_on: String,
    /// The erasure's position in the log.
    pub position: u64,
    /// The participant had been erased before (the key is gone all the same).
    pub already_erased: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("programme {program} has no participant {participant}")]
    Unknown { program: String, participant: String },
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Erases `participant` of `program` for `reason`.
pub async fn erase(
    log: &dyn EventLog,
    program: ProgramName,
    participant: Pseudonym,
    reason: Code,
) -> Result<Erasure, EraseError> {
    let key = StreamKey {
        program: program.clone(),
        participant: Some(participant.clone()),
    };
    let state = log.stream_state(&key).await?;
    if state.erased.is_some() {
        // Reading the erasure back destroys the key, should a crash have
        // come between storing it and destroying the key.
        let erasure = log
            .read_stream(&key)
            .await?
            .into_iter()
            .rfind(|e| matches!(e.event.body, EventData::ParticipantErased(_)));
        return Ok(Erasure {
            program: program.to_string(),
            participant: participant.to_string(),
            erased_on: state.erased.map(|on| on.to_string()).unwrap_or_default(),
            position: erasure.map_or(0, |e| e.position),
            already_erased: true,
        });
    }
    if state.version == 0 {
        return Err(EraseError::Unknown {
            program: program.to_string(),
            participant: participant.to_string(),
        });
    }
    log.sealing().keys().begin_erasure(&key).await.map_err(LogError::from)?;
    let on = Date(Utc::now().date_naive());
    let event = NewEvent {
        event_id: Uuid::new_v5(&ERASURES, key.to_string().as_bytes()),
        program: program.clone(),
        participant: Some(participant.clone()),
        expected_version: None,
        occurred_on: on,
        recorded_by: None,
        body: EventData::ParticipantErased(ParticipantErased { reason }),
    };
    let appended = log.append(vec![event]).await?;
    Ok(Erasure {
        program: program.to_string(),
        participant: participant.to_string(),
        erased_on: on.to_string(),
        position: appended.first().map_or(0, |a| a.position),
        already_erased: appended.first().is_some_and(|a| a.duplicate),
    })
}

#[derive(clap::Args, Debug)]
pub struct EraseArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The participant's programme (with --due: only this programme's participants).
    #[arg(long, value_parser = |s: &str| ProgramName::new(s), required_unless_present = "due")]
    pub program: Option<ProgramName>,
    /// The participant's pseudonym.
    #[arg(long, value_parser = |s: &str| Pseudonym::new(s), required_unless_present = "due", conflicts_with = "due")]
    pub participant: Option<Pseudonym>,
    /// Why, as a code: `request` (the person asked), `retention` (the programme's rule), …
    #[arg(long, value_parser = |s: &str| Code::new(s), required_unless_present = "due", conflicts_with = "due")]
    pub reason: Option<Code>,
    /// Erase everyone due under their programme's retention rule (reason `retention`).
    #[arg(long)]
    pub due: bool,
    /// With --due: list who is due and since when; erase no one.
    #[arg(long, requires = "due")]
    pub dry_run: bool,
    /// With --dry-run: who will be due on this date (YYYY-MM-DD) instead of today.
    #[arg(long, requires = "dry_run")]
    pub on: Option<chrono::NaiveDate>,
}

/// Events folded per transaction when the command brings projections current.
const PAGE: usize = 5000;

/// Erases `participant` of `program` and records it in the audit log as
/// done by `principal`, whatever the outcome.
pub async fn erase_audited(
    log: &dyn EventLog,
    access: &Access,
    principal: &str,
    program: ProgramName,
    participant: Pseudonym,
    reason: Code,
) -> anyhow::Result<Erasure> {
    let target = format!("{program}/{participant}");
    let result = erase(log, program.clone(), participant, reason.clone()).await;
    let mut record = AuditRecord::new(None, "erase", &target, if result.is_ok() { "ok" } else { "error" });
    record.principal = Some(principal.to_string());
    record.programs = Some(program.to_string());
    record.detail = Some(format!("reason: {}", reason.as_str()));
    access.audit.append(&record).await?;
    Ok(result?)
}

/// `utfall erase`: erases one participant (or, with `--due`, everyone due
/// under a retention rule), audited; then, when no running process keeps
/// the projections (it holds the lake), brings them current so that the
/// participants are gone from them before it returns.
pub async fn run(args: EraseArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    let lake = open_lake(&args.store)?;
    let models = open_read_models(&args.store).await?;
    if lake.is_writer() {
        models.catch_up(log.as_ref(), PAGE).await?;
    }
    let program = args.program.as_ref().map(ProgramName::as_str);
    if args.due && args.dry_run {
        let on = args.on.unwrap_or_else(|| Utc::now().date_naive());
        let due = models.due_for_erasure(on, program).await?;
        for d in &due {
            let exit = d.exited_on.as_deref().unwrap_or("(no exit: counted from the programme's end)");
            println!("{}\t{}\texited {exit}\tdue {}", d.program, d.participant, d.due_on);
        }
        println!("{} participant(s) due for erasure on {on}; none erased (dry run)", due.len());
        return Ok(());
    }
    let access = Access::open(&args.store).await?;
    let operator = format!("operator:{}", crate::access::whoami());
    if args.due {
        let erased = crate::retention::erase_due(log.as_ref(), &models, &access, &operator, program).await?;
        println!("erased {} participant(s) due under their programme's retention rule", erased.len());
    } else {
        let (Some(program), Some(participant), Some(reason)) = (args.program, args.participant, args.reason) else {
            anyhow::bail!("name --program, --participant and --reason, or give --due");
        };
        let target = format!("{program}/{participant}");
        let erasure = erase_audited(log.as_ref(), &access, &operator, program, participant, reason).await?;
        if erasure.already_erased {
            println!("{target} was already erased on {}; their data key is destroyed", erasure.erased_on);
        } else {
            println!("erased {target} (log position {}): their data key is destroyed", erasure.position);
        }
    }
    if lake.is_writer() {
        models.catch_up(log.as_ref(), PAGE).await?;
        catch_up(log.as_ref(), &Arc::new(lake), PAGE).await?;
        println!("removed from the read models and the analytics lake");
    } else {
        println!("the running utfall process that keeps the projections removes them from the read models and the lake");
    }
    Ok(())
}
