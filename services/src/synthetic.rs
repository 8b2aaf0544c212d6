//! `utfall gen`: a realistic synthetic event history, deterministic for a
//! seed. Participants are spread over several programmes in Norway and
//! Denmark, enrolled over years, with contacts, measurement waves, status
//! spells, services, some psychiatric treatment, exits and a few retractions.
//! Every event passes validation. Benchmarks use it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::Context;
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use utfall_events::instrument::Instrument;
use utfall_events::names::Code;
use utfall_events::vocabulary::*;
use utfall_events::{Date, EventData, NewEvent, ProgramName, Pseudonym};

use crate::cli::GenArgs;

/// Last day any generated event may fall on (fixed, so output does not
/// depend on the day it is generated).
fn horizon() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 12, 31).unwrap_or_default()
}

const PROGRAMMES: [(&str, &str, &str, &str); 8] = [
    ("gen-ringsaker", "Jobbspesialister Ringsaker", "Nav Ringsaker", "NO"),
    ("gen-naestved", "Vej til arbejde Næstved", "Jobcenter Næstved", "DK"),
    ("gen-trysil", "Aktivitet Trysil", "Nav Trysil", "NO"),
    ("gen-aarhus", "Beskæftigelse Aarhus", "Jobcenter Aarhus", "DK"),
    ("gen-notodden", "Brobygger Notodden", "Nav Notodden", "NO"),
    ("gen-tromso", "Inkludering Tromsø", "Nav Tromsø", "NO"),
    ("gen-odense", "Job og trivsel Odense", "Jobcenter Odense", "DK"),
    ("gen-bergen", "Ung i arbeid Bergen", "Nav Bergen", "NO"),
];

/// Participants whose events are interleaved by date before writing; bounds
/// memory while keeping the log order realistic.
const CHUNK: u64 = 2000;

pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut generator = Generator::new(args.seed, args.participants);
    for event in generator.programme_events() {
        write_event(&mut out, &event)?;
    }
    let mut first = 0;
    while first < args.participants {
        let last = (first + CHUNK).min(args.participants);
        let mut chunk: Vec<(NaiveDate, u64, usize, NewEvent)> = Vec::new();
        for p in first..last {
            for (seq, event) in generator.participant(p).into_iter().enumerate() {
                chunk.push((event.occurred_on.0, p, seq, event));
            }
        }
        chunk.sort_by_key(|(date, p, seq, _)| (*date, *p, *seq));
        for (_, _, _, event) in &chunk {
            write_event(&mut out, event)?;
        }
        first = last;
    }
    out.flush()?;
    Ok(())
}

fn write_event(out: &mut impl Write, event: &NewEvent) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, event)?;
    out.write_all(b"\n")?;
    Ok(())
}

struct Generator {
    seed: u64,
    programmes: Vec<(ProgramName, NaiveDate)>,
}

fn pick<'a, T>(rng: &mut ChaCha8Rng, weighted: &'a [(T, u32)]) -> &'a T {
    let total: u32 = weighted.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for (item, weight) in weighted {
        if roll < *weight {
            return item;
        }
        roll -= weight;
    }
    &weighted[0].0
}

fn code(s: &str) -> Code {
    serde_json::from_value(serde_json::Value::String(s.into())).unwrap_or_else(|_| unreachable!("static code {s}"))
}

fn pseudonym(s: String) -> Pseudonym {
    Pseudonym::new(s).unwrap_or_else(|e| unreachable!("generated pseudonym: {e}"))
}

impl Generator {
    fn new(seed: u64, participants: u64) -> Self {
        let count = (participants / 100).clamp(2, PROGRAMMES.len() as u64) as usize;
        let programmes = PROGRAMMES[..count]
            .iter()
            .enumerate()
            .map(|(i, (name, ..))| {
                let starts = NaiveDate::from_ymd_opt(2018, 1, 1).unwrap_or_default() + Duration::days(91 * i as i64);
                (ProgramName::new(*name).unwrap_or_else(|e| unreachable!("{e}")), starts)
            })
            .collect();
        Self { seed, programmes }
    }

    fn rng(&self, stream: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream)
    }

    fn event(
        rng: &mut ChaCha8Rng,
        program: &ProgramName,
        participant: Option<&Pseudonym>,
        on: NaiveDate,
        by: Option<&Pseudonym>,
        body: EventData,
    ) -> NewEvent {
        NewEvent {
            event_id: uuid::Builder::from_random_bytes(rng.random()).into_uuid(),
            program: program.clone(),
            participant: participant.cloned(),
            expected_version: None,
            occurred_on: Date(on),
            recorded_by: by.cloned(),
            body,
        }
    }

    fn programme_events(&mut self) -> Vec<NewEvent> {
        let mut rng = self.rng(u64::MAX);
        let mut events = Vec::new();
        for (i, (program, starts)) in self.programmes.iter().enumerate() {
            let (_, name, organisation, country) = PROGRAMMES[i];
            let defined = EventData::ProgramDefined(ProgramDefined {
                name: name.into(),
                organisation: organisation.into(),
                country: country.into(),
                starts_on: Date(*starts),
                ends_on: Some(Date(horizon())),
                planned_participants: None,
                budget: Some(Budget {
                    amount: f64::from(rng.random_range(20..200u32)) * 100_000.0,
                    currency: if country == "DK" { "DKK" } else { "NOK" }.into(),
                }),
            });
            events.push(Self::event(&mut rng, program, None, *starts, None, defined));
            let targets = EventData::TargetsSet(TargetsSet {
                targets: vec![
                    Target {
                        metric: TargetMetric::Builtin(Metric::JobShare),
                        op: TargetOp::AtLeast,
                        value: 0.2,
                    },
                    Target {
                        metric: TargetMetric::Builtin(Metric::EducationShare),
                        op: TargetOp::AtLeast,
                        value: 0.15,
                    },
                    Target {
                        metric: TargetMetric::Builtin(Metric::NeverPsychiatricTreatmentShare),
                        op: TargetOp::AtLeast,
                        value: 0.9,
                    },
                ],
            });
            events.push(Self::event(&mut rng, program, None, *starts, None, targets));
        }
        events
    }

    /// One participant's whole history, in order.
    fn participant(&self, p: u64) -> Vec<NewEvent> {
        let programmes = self.programmes.len() as u64;
        let (program, starts) = &self.programmes[(p % programmes) as usize];
        let mut rng = self.rng(p);
        let consultant = pseudonym(format!("c{}-{}", p % programmes, rng.random_range(0..8)));
        let span = (horizon() - *starts).num_days() - 120;
        let enrolled = *starts + Duration::days(rng.random_range(0..span.max(1)));
        let planned_end = enrolled + Duration::days(rng.random_range(90..900));
        let exits = planned_end <= horizon() && rng.random_bool(0.85);
        let mut history = History {
            rng,
            program: program.clone(),
            who: pseudonym(format!("G{p:07}")),
            consultant,
            enrolled,
            end: planned_end.min(horizon()),
            timeline: BTreeMap::new(),
        };
        history.enrolment();
        history.contacts();
        history.measurement_waves();
        history.status_changes();
        history.services();
        history.psychiatric_treatment();
        history.into_events(exits)
    }
}

const GENDERS: [(Gender, u32); 4] = [
    (Gender::Female, 45),
    (Gender::Male, 50),
    (Gender::Other, 2),
    (Gender::Unknown, 3),
];
const REFERRALS: [(&str, u32); 5] = [
    ("nav_caseworker", 50),
    ("job_centre", 25),
    ("dps", 10),
    ("mental_health", 10),
    ("self_referral", 5),
];
const INCOMES: [(&str, u32); 3] = [("social_assistance", 60), ("cash_benefit", 30), ("none", 10)];
const TARGET_GROUPS: [(&str, u32); 4] = [("youth", 30), ("immigrant", 25), ("lar", 8), ("rop", 8)];
const CONTACT_KINDS: [(ContactKind, u32); 11] = [
    (ContactKind::Conversation, 30),
    (ContactKind::Phone, 20),
    (ContactKind::Sms, 10),
    (ContactKind::HomeVisit, 8),
    (ContactKind::WalkAndTalk, 6),
    (ContactKind::JobSearchHelp, 10),
    (ContactKind::NetworkMeeting, 5),
    (ContactKind::GroupSession, 4),
    (ContactKind::Accompaniment, 4),
    (ContactKind::Outreach, 2),
    (ContactKind::Other, 1),
];
const STAFF_ROLES: [(StaffRole, u32); 4] = [
    (StaffRole::JobSpecialist, 40),
    (StaffRole::HealthSupport, 25),
    (StaffRole::ActivityCoordinator, 20),
    (StaffRole::Caseworker, 15),
];
const STATUSES: [(Status, u32); 9] = [
    (Status::Activity, 35),
    (Status::Employed, 15),
    (Status::Education, 10),
    (Status::WageSubsidy, 5),
    (Status::Apprenticeship, 3),
    (Status::WorkAssessmentAllowance, 10),
    (Status::DisabilityPension, 3),
    (Status::ShelteredWork, 4),
    (Status::NoActivity, 10),
];
const PATHWAYS: [(Pathway, u32); 4] = [
    (Pathway::DirectApplication, 40),
    (Pathway::Internship, 30),
    (Pathway::SupportedEmployment, 25),
    (Pathway::Other, 5),
];
const SETTINGS: [(TreatmentSetting, u32); 3] = [
    (TreatmentSetting::Outpatient, 70),
    (TreatmentSetting::Inpatient, 25),
    (TreatmentSetting::Unknown, 5),
];
const EXIT_REASONS: [(ExitReason, u32); 6] = [
    (ExitReason::Completed, 60),
    (ExitReason::DroppedOut, 15),
    (ExitReason::Moved, 8),
    (ExitReason::Transferred, 10),
    (ExitReason::Other, 5),
    (ExitReason::Deceased, 2),
];

/// One participant's events between enrolment and `end`, built up by kind
/// and then put in date order.
struct History {
    rng: ChaCha8Rng,
    program: ProgramName,
    who: Pseudonym,
    consultant: Pseudonym,
    enrolled: NaiveDate,
    end: NaiveDate,
    /// Keyed by date and insertion order, so same-day events keep their order.
    timeline: BTreeMap<(NaiveDate, usize), EventData>,
}

impl History {
    fn at(&mut self, on: NaiveDate, body: EventData) {
        let order = self.timeline.len();
        self.timeline.insert((on, order), body);
    }

    /// A random day from `from` to the end of participation.
    fn day_from(&mut self, from: NaiveDate) -> NaiveDate {
        from + Duration::days(self.rng.random_range(0..=(self.end - from).num_days().max(0)))
    }

    fn enrolment(&mut self) {
        let rng = &mut self.rng;
        let enrolled = EventData::ParticipantEnrolled(ParticipantEnrolled {
            referral_source: Some(code(pick::<&str>(rng, &REFERRALS))),
            birth_year: Some(rng.random_range(1960..2006)),
            gender: Some(*pick(rng, &GENDERS)),
            target_groups: Some(
                TARGET_GROUPS
                    .iter()
                    .filter(|(_, pct)| rng.random_range(0..100) < *pct)
                    .map(|(g, _)| code(g))
                    .collect(),
            ),
            income_source: Some(code(pick::<&str>(rng, &INCOMES))),
            prior_psychiatric_diagnosis: Some(rng.random_bool(0.4)),
            physical_challenges: Some(rng.random_bool(0.25)),
            consultant: Some(self.consultant.clone()),
        });
        self.at(self.enrolled, enrolled);
        let consent = |scope| EventData::ConsentRecorded(ConsentRecorded { scope, given: true });
        self.at(self.enrolled, consent(ConsentScope::FollowUp));
        if self.rng.random_bool(0.7) {
            self.at(self.enrolled, consent(ConsentScope::Evaluation));
        }
        let status = EventData::StatusChanged(StatusChanged {
            status: Status::NoActivity,
            hours_per_week: None,
            pathway: None,
        });
        self.at(self.enrolled, status);
    }

    /// A contact every one to three weeks.
    fn contacts(&mut self) {
        let mut on = self.enrolled + Duration::days(self.rng.random_range(1..10));
        while on <= self.end {
            let rng = &mut self.rng;
            let contact = EventData::ContactRecorded(ContactRecorded {
                kind: *pick(rng, &CONTACT_KINDS),
                staff_role: Some(*pick(rng, &STAFF_ROLES)),
                attended: rng.random_bool(0.87),
                minutes: Some(rng.random_range(1..=12) * 10),
            });
            self.at(on, contact);
            on += Duration::days(self.rng.random_range(7..22));
        }
    }

    /// COOP/WONCA and self-rated mental health at enrolment, six months and a
    /// year, tending to improve.
    fn measurement_waves(&mut self) {
        let baseline: f64 = self.rng.random_range(2.0..4.2);
        for (wave, offset) in [(1u32, 0i64), (2, 180), (3, 365)] {
            let when = self.enrolled + Duration::days(offset + self.rng.random_range(0..14));
            if when > self.end {
                break;
            }
            let rng = &mut self.rng;
            let level = baseline - 0.25 * f64::from(wave - 1) * rng.random_range(-0.5..1.5);
            let mut score = || (level + rng.random_range(-1.0..1.0)).round().clamp(1.0, 5.0);
            let items = Instrument::CoopWonca.items();
            let answered = if score() > 2.0 { items.len() } else { items.len() - 1 };
            let coop = items[..answered]
                .iter()
                .map(|item| (item.to_string(), score()))
                .collect();
            let mental = BTreeMap::from([("rating".to_string(), score())]);
            for (instrument, scores) in [
                (Instrument::CoopWonca, coop),
                (Instrument::SelfRatedMentalHealth, mental),
            ] {
                self.at(
                    when,
                    EventData::MeasurementRecorded(MeasurementRecorded {
                        instrument,
                        wave: Some(wave),
                        scores,
                    }),
                );
            }
        }
    }

    fn status_changes(&mut self) {
        for _ in 0..self.rng.random_range(1..=4) {
            let rng = &mut self.rng;
            let status = *pick(rng, &STATUSES);
            let job = status.outcome_group() == OutcomeGroup::Job;
            let body = EventData::StatusChanged(StatusChanged {
                status,
                hours_per_week: job.then(|| f64::from(rng.random_range(4..=15u32)) * 2.5),
                pathway: job.then(|| *pick(rng, &PATHWAYS)),
            });
            let first = self.enrolled + Duration::days(30).min(self.end - self.enrolled);
            let when = self.day_from(first);
            self.at(when, body);
        }
    }

    fn services(&mut self) {
        for service in [Service::HealthSupport, Service::JobSupport] {
            if self.rng.random_bool(0.6) {
                let from = self.day_from(self.enrolled);
                self.at(from, EventData::ServiceStarted(ServiceChange { service }));
                if self.rng.random_bool(0.6) {
                    let to = self.day_from(from);
                    self.at(to, EventData::ServiceEnded(ServiceChange { service }));
                }
            }
        }
    }

    fn psychiatric_treatment(&mut self) {
        if self.rng.random_bool(0.08) {
            let setting = *pick(&mut self.rng, &SETTINGS);
            let when = self.day_from(self.enrolled);
            self.at(
                when,
                EventData::PsychiatricTreatmentStarted(PsychiatricTreatmentStarted { setting }),
            );
        }
    }

    /// The timeline as events, with a retraction of a mistaken contact for a
    /// few participants and the exit last.
    fn into_events(mut self, exits: bool) -> Vec<NewEvent> {
        let timeline = std::mem::take(&mut self.timeline);
        let mut events: Vec<NewEvent> = timeline
            .into_iter()
            .map(|((on, _), body)| self.event(on, body))
            .collect();
        let first_contact = events
            .iter()
            .find(|e| matches!(e.body, EventData::ContactRecorded(_)))
            .map(|e| (e.event_id, e.occurred_on.0));
        if let Some((event_id, on)) = first_contact
            && self.rng.random_bool(0.02)
        {
            let when = (on + Duration::days(self.rng.random_range(0..30))).min(self.end);
            let body = EventData::EventRetracted(EventRetracted {
                event_id,
                reason: code("entered_in_error"),
            });
            let at = events.partition_point(|e| e.occurred_on.0 <= when);
            events.insert(at, self.event(when, body));
        }
        if exits {
            let reason = *pick(&mut self.rng, &EXIT_REASONS);
            if reason == ExitReason::Moved {
                let moved = StatusChanged {
                    status: Status::Moved,
                    hours_per_week: None,
                    pathway: None,
                };
                events.push(self.event(self.end, EventData::StatusChanged(moved)));
            }
            events.push(self.event(self.end, EventData::ParticipantExited(ParticipantExited { reason })));
        }
        events
    }

    fn event(&mut self, on: NaiveDate, body: EventData) -> NewEvent {
        let (program, who, by) = (&self.program, &self.who, &self.consultant);
        Generator::event(&mut self.rng, program, Some(who), on, Some(by), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_history_and_another_seed_another() {
        let a = Generator::new(7, 300).participant(42);
        let b = Generator::new(7, 300).participant(42);
        let c = Generator::new(8, 300).participant(42);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(matches!(a[0].body, EventData::ParticipantEnrolled(_)));
    }

    #[test]
    fn every_event_lies_between_enrolment_and_exit() {
        let generator = Generator::new(1, 500);
        for p in 0..500 {
            let events = generator.participant(p);
            let enrolled = events[0].occurred_on;
            let last = events.last().map(|e| e.occurred_on).unwrap_or(enrolled);
            for pair in events.windows(2) {
                assert!(
                    pair[0].occurred_on <= pair[1].occurred_on,
                    "participant {p} out of order"
                );
            }
            assert!(
                events
                    .iter()
                    .all(|e| e.occurred_on >= enrolled && e.occurred_on <= last)
            );
            assert!(last.0 <= horizon());
        }
    }
}
