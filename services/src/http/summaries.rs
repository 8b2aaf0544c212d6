//! Programme summaries as last computed, kept until the read models move
//! on or the day changes. The dashboard polls a summary every few seconds
//! from every open page; computing one reads several aggregates over the
//! programme's rows (tens of milliseconds at national scale), while a kept
//! one is a copy of bytes. Polls that arrive while a summary is being
//! computed wait for that one computation instead of starting their own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use utfall_projections::ReadModels;

use super::error::ApiError;

/// A summary as served: its JSON, and the read-model position and day it
/// was computed for.
#[derive(Clone, Debug)]
pub struct Computed {
    pub position: u64,
    pub today: String,
    pub json: Bytes,
}

/// One slot per programme ever summarised (programmes are few; an unknown
/// programme gets no slot).
#[derive(Default)]
pub struct Summaries {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Computed>>>>>,
}

impl Summaries {
    /// The summary of `program` for `today` at read-model position
    /// `position` or later; `None` when the programme is not defined.
    pub async fn get(
        &self,
        models: &ReadModels,
        program: &str,
        today: &str,
        position: u64,
    ) -> Result<Option<Computed>, ApiError> {
        let slot = self
            .slots
            .lock()
            .map_err(|_| ApiError::Internal("the summary cache is poisoned".into()))?
            .get(program)
            .cloned();
        let slot = match slot {
            Some(slot) => slot,
            None => {
                // Only a defined programme earns a slot.
                let Some(computed) = compute(models, program, today, position).await? else {
                    return Ok(None);
                };
                let slot = Arc::new(tokio::sync::Mutex::new(Some(computed.clone())));
                self.slots
                    .lock()
                    .map_err(|_| ApiError::Internal("the summary cache is poisoned".into()))?
                    .entry(program.to_string())
                    .or_insert(slot);
                return Ok(Some(computed));
            }
        };
        let mut kept = slot.lock().await;
        if let Some(computed) = kept.as_ref()
            && computed.position >= position
            && computed.today == today
        {
            return Ok(Some(computed.clone()));
        }
        let computed = compute(models, program, today, position).await?;
        kept.clone_from(&computed);
        Ok(computed)
    }
}

async fn compute(models: &ReadModels, program: &str, today: &str, position: u64) -> Result<Option<Computed>, ApiError> {
    let Some(summary) = models.summary(program, today).await? else {
        return Ok(None);
    };
    let json = serde_json::to_vec(&summary).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Some(Computed {
        position,
        today: today.to_string(),
        json: Bytes::from(json),
    }))
}
