//! `utfall quarantine`: the operator's way past an event the log holds but
//! cannot read (a corrupted or foreign message in the stream). The position
//! is recorded with a reason and a time beside the log; readers skip it.
//! Only an unreadable event can be set aside.

use crate::cli::QuarantineArgs;
use crate::store::open_log;

pub async fn run(args: QuarantineArgs) -> anyhow::Result<()> {
    let log = open_log(&args.store).await?;
    if let (Some(position), Some(reason)) = (args.position, &args.reason) {
        let entry = log.quarantine(position, reason).await?;
        println!(
            "quarantined position {}: readers now go on past it ({})",
            entry.position, entry.reason
        );
        return Ok(());
    }
    for entry in log.quarantined().await? {
        println!(
            "{}\t{}\t{}",
            entry.position,
            entry.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            entry.reason
        );
    }
    Ok(())
}
