//! The event vocabulary, schema version 1: what each event type carries.
//!
//! Every struct denies unknown fields and every closed value set is an enum,
//! so anything outside the contract fails to parse. Rules that serde cannot
//! express (ranges, cross-field checks) live in [`EventData::check`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::Datelike;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::country::is_iso_country;
use crate::date::Date;
use crate::instrument::Instrument;
use crate::names::{Code, Pseudonym};

/// The current wire schema version. Stored events carry the version they were
/// written with so a later version can upcast them on read.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened: the `type` and `data` of an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventData {
    ProgramDefined(ProgramDefined),
    TargetsSet(TargetsSet),
    ParticipantEnrolled(ParticipantEnrolled),
    ConsentRecorded(ConsentRecorded),
    ContactRecorded(ContactRecorded),
    MeasurementRecorded(MeasurementRecorded),
    StatusChanged(StatusChanged),
    ServiceStarted(ServiceChange),
    ServiceEnded(ServiceChange),
    PsychiatricTreatmentStarted(PsychiatricTreatmentStarted),
    ParticipantExited(ParticipantExited),
    EventRetracted(EventRetracted),
    ParticipantErased(ParticipantErased),
    RetentionSet(RetentionSet),
    IndicatorDefined(IndicatorDefined),
}

/// Every event type name, in the order of [`EventData`].
pub const EVENT_TYPES: [&str; 15] = [
    "program_defined",
    "targets_set",
    "participant_enrolled",
    "consent_recorded",
    "contact_recorded",
    "measurement_recorded",
    "status_changed",
    "service_started",
    "service_ended",
    "psychiatric_treatment_started",
    "participant_exited",
    "event_retracted",
    "participant_erased",
    "retention_set",
    "indicator_defined",
];

impl EventData {
    /// The wire name of the event type.
    pub fn type_name(&self) -> &'static str {
        use EventData::*;
        let i = match self {
            ProgramDefined(_) => 0,
            TargetsSet(_) => 1,
            ParticipantEnrolled(_) => 2,
            ConsentRecorded(_) => 3,
            ContactRecorded(_) => 4,
            MeasurementRecorded(_) => 5,
            StatusChanged(_) => 6,
            ServiceStarted(_) => 7,
            ServiceEnded(_) => 8,
            PsychiatricTreatmentStarted(_) => 9,
            ParticipantExited(_) => 10,
            EventRetracted(_) => 11,
            ParticipantErased(_) => 12,
            RetentionSet(_) => 13,
            IndicatorDefined(_) => 14,
        };
        EVENT_TYPES[i]
    }

    /// Builds the event from its wire `type` and `data`, naming the field
    /// (`data.…`) of any problem.
    pub fn from_wire(type_name: &str, data: Value) -> Result<Self, (String, String)> {
        fn data_of<T: DeserializeOwned>(data: Value) -> Result<T, (String, String)> {
            serde_path_to_error::deserialize(data).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "data".to_string()
                } else {
                    format!("data.{path}")
                };
                (field, e.into_inner().to_string())
            })
        }
        use EventData::*;
        Ok(match type_name {
            "program_defined" => ProgramDefined(data_of(data)?),
            "targets_set" => TargetsSet(data_of(data)?),
            "participant_enrolled" => ParticipantEnrolled(data_of(data)?),
            "consent_recorded" => ConsentRecorded(data_of(data)?),
            "contact_recorded" => ContactRecorded(data_of(data)?),
            "measurement_recorded" => MeasurementRecorded(data_of(data)?),
            "status_changed" => StatusChanged(data_of(data)?),
            "service_started" => ServiceStarted(data_of(data)?),
            "service_ended" => ServiceEnded(data_of(data)?),
            "psychiatric_treatment_started" => PsychiatricTreatmentStarted(data_of(data)?),
            "participant_exited" => ParticipantExited(data_of(data)?),
            "event_retracted" => EventRetracted(data_of(data)?),
            "participant_erased" => ParticipantErased(data_of(data)?),
            "retention_set" => RetentionSet(data_of(data)?),
            "indicator_defined" => IndicatorDefined(data_of(data)?),
            other => {
                return Err((
                    "type".into(),
                    format!(
                        "unknown event type {other:?}; expected one of {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        })
    }

    /// The wire `data` object as JSON text, as stored in the `events` table
    /// and the lake.
    pub fn data_json(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(Value::take))
            .unwrap_or_default()
            .to_string()
    }

    /// Programme-level events carry no participant; all others need one.
    pub fn is_program_level(&self) -> bool {
        matches!(
            self,
            EventData::ProgramDefined(_)
                | EventData::TargetsSet(_)
                | EventData::RetentionSet(_)
                | EventData::IndicatorDefined(_)
        )
    }

    /// Rules beyond the shape: ranges and cross-field checks. Each problem is
    /// returned as (field path below `data`, message).
    pub fn check(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut fail = |field: &str, message: String| problems.push((format!("data.{field}"), message));
        match self {
            EventData::ProgramDefined(p) => {
                if !is_iso_country(&p.country) {
                    fail(
                        "country",
                        format!("{:?} is not an ISO 3166 alpha-2 country code", p.country),
                    );
                }
                if p.name.trim().is_empty() {
                    fail("name", "must not be empty".into());
                }
                if p.organisation.trim().is_empty() {
                    fail("organisation", "must not be empty".into());
                }
                if let Some(ends_on) = p.ends_on
                    && ends_on < p.starts_on
                {
                    fail("ends_on", format!("{ends_on} is before starts_on {}", p.starts_on));
                }
                if let Some(budget) = &p.budget {
                    if !(budget.amount.is_finite() && budget.amount >= 0.0) {
                        fail("budget.amount", "must be a non-negative number".into());
                    }
                    if !(budget.currency.len() == 3 && budget.currency.bytes().all(|c| c.is_ascii_uppercase())) {
                        fail(
                            "budget.currency",
                            format!("{:?} is not an ISO 4217 currency code", budget.currency),
                        );
                    }
                }
            }
            EventData::TargetsSet(t) => {
                let mut seen = BTreeSet::new();
                for (i, target) in t.targets.iter().enumerate() {
                    if !seen.insert(&target.metric) {
                        fail(
                            &format!("targets[{i}].metric"),
                            format!("{:?} is set twice", target.metric),
                        );
                    }
                    if !(0.0..=1.0).contains(&target.value) {
                        fail(&format!("targets[{i}].value"), "must be a share between 0 and 1".into());
                    }
                }
            }
            EventData::RetentionSet(r) => {
                if !(1..=MAX_RETENTION_MONTHS).contains(&r.months_after_exit) {
                    fail(
                        "months_after_exit",
                        format!("{} is not between 1 and {MAX_RETENTION_MONTHS}", r.months_after_exit),
                    );
                }
            }
            EventData::IndicatorDefined(d) => {
                if d.name.as_str().parse::<Metric>().is_ok() {
                    fail("name", format!("{:?} is a built-in metric; an indicator needs a name of its own", d.name.as_str()));
                }
                if d.description.trim().is_empty() || d.description.len() > MAX_DESCRIPTION_BYTES {
                    fail("description", format!("must hold 1 to {MAX_DESCRIPTION_BYTES} bytes"));
                }
                let predicates = [("numerator", Some(&d.numerator)), ("denominator", d.denominator.as_ref())];
                for (field, predicate) in predicates {
                    if let Some(p) = predicate
                        && (p.trim().is_empty() || p.len() > MAX_PREDICATE_BYTES)
                    {
                        fail(field, format!("must be an SQL condition of 1 to {MAX_PREDICATE_BYTES} bytes"));
                    }
                }
            }
            EventData::ParticipantEnrolled(e) => {
                let this_year = u16::try_from(chrono::Utc::now().year()).unwrap_or(u16::MAX);
                if let Some(year) = e.birth_year
                    && !(1900..=this_year).contains(&year)
                {
                    fail(
                        "birth_year",
                        format!("{year} is not a plausible birth year (1900–{this_year})"),
                    );
                }
            }
            EventData::ContactRecorded(c) => {
                if let Some(minutes) = c.minutes
                    && minutes > 24 * 60
                {
                    fail("minutes", format!("{minutes} is more than a day"));
                }
            }
            EventData::MeasurementRecorded(m) => {
                if m.wave == Some(0) {
                    fail("wave", "waves are numbered from 1".into());
                }
                for (field, message) in m.instrument.check_scores(&m.scores) {
                    fail(&format!("scores.{field}"), message);
                }
                if m.scores.is_empty() {
                    fail("scores", "must hold at least one item".into());
                }
            }
            EventData::StatusChanged(s) => {
                if let Some(hours) = s.hours_per_week
                    && !(hours.is_finite() && (0.0..=168.0).contains(&hours))
                {
                    fail("hours_per_week", format!("{hours} is not between 0 and 168"));
                }
            }
            EventData::ConsentRecorded(_)
            | EventData::ServiceStarted(_)
            | EventData::ServiceEnded(_)
            | EventData::PsychiatricTreatmentStarted(_)
            | EventData::ParticipantExited(_)
            | EventData::EventRetracted(_)
            | EventData::ParticipantErased(_) => {}
        }
        problems
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramDefined {
    pub name: String,
    pub organisation: String,
    /// ISO 3166 alpha-2, e.g. `NO`, `DK`.
    pub country: String,
    pub starts_on: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_on: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_participants: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub amount: f64,
    /// ISO 4217, e.g. `NOK`, `DKK`.
    pub currency: String,
}

/// Replaces the programme's earlier target set from `occurred_on`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetsSet {
    pub targets: Vec<Target>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub metric: TargetMetric,
    pub op: TargetOp,
    pub value: f64,
}

/// The built-in outcome metrics (DESIGN, "Outcome metrics").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    JobShare,
    EducationShare,
    NeverPsychiatricTreatmentShare,
    RetainedShare,
    ClarifiedShare,
}

impl std::str::FromStr for Metric {
    type Err = serde_json::Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(Value::String(name.to_string()))
    }
}

/// What a target is set on: a built-in metric, or an indicator its
/// programme defined (by an earlier `indicator_defined`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TargetMetric {
    Builtin(Metric),
    Indicator(Code),
}

impl<'de> Deserialize<'de> for TargetMetric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if let Ok(metric) = name.parse() {
            return Ok(TargetMetric::Builtin(metric));
        }
        Code::new(name).map(TargetMetric::Indicator).map_err(|_| {
            serde::de::Error::custom(
                "not a metric: job_share, education_share, never_psychiatric_treatment_share, \
                 retained_share, clarified_share, or the name of an indicator the programme defined",
            )
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetOp {
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<=")]
    AtMost,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantEnrolled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral_source: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<Gender>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_groups: Option<Vec<Code>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub income_source: Option<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_psychiatric_diagnosis: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub physical_challenges: Option<bool>,
    /// The responsible staff member's pseudonym.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consultant: Option<Pseudonym>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Female,
    Male,
    Other,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRecorded {
    pub scope: ConsentScope,
    pub given: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentScope {
    FollowUp,
    Evaluation,
    DataSharing,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactRecorded {
    pub kind: ContactKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staff_role: Option<StaffRole>,
    #[serde(default = "yes")]
    pub attended: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Conversation,
    HomeVisit,
    Phone,
    Sms,
    WalkAndTalk,
    GroupSession,
    NetworkMeeting,
    Accompaniment,
    Outreach,
    JobSearchHelp,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    ActivityCoordinator,
    JobSpecialist,
    HealthSupport,
    ResourceConsultant,
    Caseworker,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasurementRecorded {
    pub instrument: Instrument,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<u32>,
    /// Item → score. Which items are allowed depends on the instrument.
    pub scores: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChanged {
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_per_week: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pathway: Option<Pathway>,
}

/// A participant's status; see [`Status::outcome_group`] for the default
/// grouping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Employed,
    Apprenticeship,
    WageSubsidy,
    Education,
    Activity,
    ShelteredWork,
    WorkAssessmentAllowance,
    DisabilityPension,
    Moved,
    NoActivity,
}

/// Where a status counts when outcomes are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeGroup {
    Job,
    Education,
    Activity,
    Benefit,
    Moved,
    None,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Employed,
        Status::Apprenticeship,
        Status::WageSubsidy,
        Status::Education,
        Status::Activity,
        Status::ShelteredWork,
        Status::WorkAssessmentAllowance,
        Status::DisabilityPension,
        Status::Moved,
        Status::NoActivity,
    ];

    /// The default mapping of DESIGN's status taxonomy.
    pub fn outcome_group(self) -> OutcomeGroup {
        use Status::*;
        match self {
            Employed | Apprenticeship | WageSubsidy => OutcomeGroup::Job,
            Education => OutcomeGroup::Education,
            Activity | ShelteredWork => OutcomeGroup::Activity,
            WorkAssessmentAllowance | DisabilityPension => OutcomeGroup::Benefit,
            Moved => OutcomeGroup::Moved,
            NoActivity => OutcomeGroup::None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pathway {
    DirectApplication,
    Internship,
    SupportedEmployment,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceChange {
    pub service: Service,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    HealthSupport,
    JobSupport,
    IndividualPlan,
    ResponsibilityGroup,
    Housing,
    DebtAdvice,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PsychiatricTreatmentStarted {
    pub setting: TreatmentSetting,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TreatmentSetting {
    Inpatient,
    Outpatient,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantExited {
    pub reason: ExitReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    Completed,
    Moved,
    DroppedOut,
    Transferred,
    Deceased,
    Other,
}

/// Undoes an earlier event of the same participant. The reason is a code
/// (e.g. `entered_in_error`, `wrong_participant`, `wrong_date`), not free
/// text, so no health details can slip into the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRetracted {
    pub event_id: Uuid,
    pub reason: Code,
}

/// The longest retention a rule may set: a hundred years.
pub const MAX_RETENTION_MONTHS: u16 = 1200;

/// The programme's retention rule, replacing any earlier one: a
/// participant is erased `months_after_exit` months after their exit, or,
/// never having exited, as long after the programme's `ends_on`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionSet {
    pub months_after_exit: u16,
}

/// Longest indicator description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 2000;
/// Longest indicator condition, in bytes.
pub const MAX_PREDICATE_BYTES: usize = 4000;

/// A programme's own share indicator. A later definition of the same name
/// replaces it; reports use the latest recorded by their known-at time
/// (whatever their as-of date, so a new indicator also counts the past).
/// The numerator and denominator are SQL
/// conditions over one `participants` row (with `as_of`, the report's
/// as-of date); subqueries may read the catalog's tables. The SQL is
/// checked when the event is recorded (see `utfall_queries::indicators`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorDefined {
    /// What targets and reports call it, e.g. `plan_within_30_days`.
    pub name: Code,
    pub description: String,
    /// Counted among the denominator: who reached it.
    pub numerator: String,
    /// Who is counted; every enrolled participant when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
}

/// A participant's erasure: their data key is destroyed, and nothing of
/// them is kept outside the log's unreadable ciphertext. Carries no
/// personal data (it is stored in clear) and is recorded only by an
/// erasure, never sent as an event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParticipantErased {
    /// Why, as a code (e.g. `request`, `retention`); never free text.
    pub reason: Code,
}
