//! The users' languages: Norwegian bokmål, Danish and English. Staff read
//! the dashboard and funders the extracts in their own language, with
//! human labels for metrics, statuses and outcome groups; identifiers stay
//! as they are in SQL, JSON, CSV headers and Parquet columns, so
//! evaluators' code does not break.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Nb,
    Da,
}

impl FromStr for Language {
    type Err = String;

    /// `nb`, `da`, `en`, or a tag of one (`nb-NO`, `da-DK`, `en-GB`);
    /// `no` and `nn` read as bokmål, the closest there is.
    fn from_str(tag: &str) -> Result<Self, String> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        match primary.as_str() {
            "en" => Ok(Language::En),
            "nb" | "no" | "nn" => Ok(Language::Nb),
            "da" => Ok(Language::Da),
            _ => Err(format!(
                "{:?} is not a language utfall speaks: nb (Norwegian bokmål), da (Danish) or en (English)",
                tag.chars().take(20).collect::<String>()
            )),
        }
    }
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Nb => "nb",
            Language::Da => "da",
        }
    }

    /// The language an `Accept-Language` header asks for first among
    /// those utfall speaks (highest `q`, then the order given); none when
    /// it asks for none of them.
    pub fn negotiate(accept_language: &str) -> Option<Self> {
        let mut asked: Vec<(f32, usize, Language)> = accept_language
            .split(',')
            .take(32)
            .enumerate()
            .filter_map(|(i, item)| {
                let mut parts = item.split(';');
                let language = parts.next()?.parse().ok()?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (q > 0.0).then_some((q, i, language))
            })
            .collect();
        asked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        asked.first().map(|a| a.2)
    }

    /// The text of `key` (`metric.job_share`, `group.job`, `ui.enrolled`,
    /// …); `None` when the catalog has no such key.
    pub fn text(self, key: &str) -> Option<&'static str> {
        LABELS.iter().find(|l| l.0 == key).map(|l| match self {
            Language::En => l.1,
            Language::Nb => l.2,
            Language::Da => l.3,
        })
    }

    /// The label of identifier `id` of `kind` (`metric`, `status`,
    /// `group`, `exit`, `verdict`), or the identifier itself when it has
    /// none (a programme's own indicator is named by its programme).
    pub fn label<'a>(self, kind: &str, id: &'a str) -> std::borrow::Cow<'a, str> {
        match self.text(&format!("{kind}.{id}")) {
            Some(text) => text.into(),
            None => id.into(),
        }
    }

    /// Every text of the catalog in this language, by key.
    pub fn catalog(self) -> BTreeMap<&'static str, &'static str> {
        LABELS.iter().filter_map(|l| Some((l.0, self.text(l.0)?))).collect()
    }
}

/// (key, English, bokmål, Danish). `{name}` marks where a figure goes.
const LABELS: &[(&str, &str, &str, &str)] = &[
    ("metric.job_share", "In a job", "I jobb", "I job"),
    ("metric.education_share", "Started education", "Startet utdanning", "Startet uddannelse"),
    (
        "metric.never_psychiatric_treatment_share",
        "Never needed psychiatric treatment",
        "Aldri behov for psykiatrisk behandling",
        "Aldrig behov for psykiatrisk behandling",
    ),
    ("metric.retained_share", "Did not drop out", "Falt ikke fra", "Faldt ikke fra"),
    ("metric.clarified_share", "Clarified at exit", "Avklart ved avslutning", "Afklaret ved afslutning"),
    ("group.job", "Job", "Jobb", "Job"),
    ("group.education", "Education", "Utdanning", "Uddannelse"),
    ("group.activity", "Activity", "Aktivitet", "Aktivitet"),
    ("group.benefit", "Benefit", "Ytelse", "Ydelse"),
    ("group.moved", "Moved", "Flyttet", "Flyttet"),
    ("group.none", "No activity", "Ingen aktivitet", "Ingen aktivitet"),
    ("group.unknown", "No status yet", "Ingen status ennå", "Ingen status endnu"),
    ("status.employed", "Employed", "I arbeid", "I beskæftigelse"),
    ("status.apprenticeship", "Apprenticeship", "Lærling", "Lærling"),
    ("status.wage_subsidy", "Wage subsidy", "Lønnstilskudd", "Løntilskud"),
    ("status.education", "Education", "Utdanning", "Uddannelse"),
    ("status.activity", "Labour-market measure", "Arbeidsrettet tiltak", "Beskæftigelsesindsats"),
    ("status.sheltered_work", "Sheltered work", "Varig tilrettelagt arbeid", "Beskyttet beskæftigelse"),
    (
        "status.work_assessment_allowance",
        "Work assessment allowance",
        "Arbeidsavklaringspenger",
        "Ressourceforløbsydelse",
    ),
    ("status.disability_pension", "Disability pension", "Uføretrygd", "Førtidspension"),
    ("status.moved", "Moved", "Flyttet", "Flyttet"),
    ("status.no_activity", "No activity", "Ingen aktivitet", "Ingen aktivitet"),
    ("exit.completed", "Completed", "Fullført", "Gennemført"),
    ("exit.moved", "Moved", "Flyttet", "Flyttet"),
    ("exit.dropped_out", "Dropped out", "Falt fra", "Faldt fra"),
    ("exit.transferred", "Transferred", "Overført", "Overført"),
    ("exit.deceased", "Deceased", "Død", "Død"),
    ("exit.other", "Other", "Annet", "Andet"),
    ("exit.unknown", "Unknown", "Ukjent", "Ukendt"),
    ("verdict.on_track", "on track", "i rute", "på rette spor"),
    ("verdict.off_track", "off track", "ikke i rute", "ikke på rette spor"),
    ("verdict.uncertain", "uncertain", "usikkert", "usikkert"),
    ("basis.projected", "projected to {date}", "framskrevet til {date}", "fremskrevet til {date}"),
    ("basis.current", "now", "nå", "nu"),
    ("ui.programmes", "Programmes", "Programmer", "Programmer"),
    ("ui.sign_in", "Sign in", "Logg inn", "Log ind"),
    ("ui.sign_in_with_token", "Sign in with your utfall token", "Logg inn med utfall-nøkkelen din", "Log ind med din utfall-nøgle"),
    ("ui.sign_out", "Sign out", "Logg ut", "Log ud"),
    ("ui.participants", "Participants", "Deltakere", "Deltagere"),
    ("ui.enrolled", "enrolled", "innskrevet", "indskrevet"),
    ("ui.active", "active", "aktive", "aktive"),
    ("ui.exited", "exited", "avsluttet", "afsluttet"),
    ("ui.contacts_30_days", "contacts, last 30 days", "kontakter, siste 30 dager", "kontakter, seneste 30 dage"),
    ("ui.organisation_enrolled", "{organisation} · {n} enrolled", "{organisation} · {n} innskrevet", "{organisation} · {n} indskrevet"),
    ("ui.status_distribution", "Status distribution (last status)", "Fordeling på status (siste status)", "Fordeling på status (seneste status)"),
    ("ui.outcomes", "Outcomes against targets", "Resultater mot mål", "Resultater mod mål"),
    ("ui.as_of", "as of {date}, log position {position}", "per {date}, loggposisjon {position}", "pr. {date}, logposition {position}"),
    (
        "ui.outcomes_note",
        "Bars: the share with its 95 % interval; the tick is the target. On track: the share expected at the programme's end (projected for time-to-event targets) has its 95 % interval on the target's side; hover for it.",
        "Stolper: andelen med 95 %-intervall; streken er målet. I rute: andelen som ventes ved programmets slutt (framskrevet for mål som gjelder tid til en hendelse) har 95 %-intervallet på målets side; hold pekeren over for tallene.",
        "Søjler: andelen med 95 %-interval; stregen er målet. På rette spor: den andel, der ventes ved programmets afslutning (fremskrevet for mål om tid til en hændelse), har sit 95 %-interval på målets side; hold markøren over for tallene.",
    ),
    ("ui.no_target", "no target", "intet mål", "intet mål"),
    ("ui.met", "met", "nådd", "nået"),
    ("ui.not_met", "not met", "ikke nådd", "ikke nået"),
    ("ui.no_participants_yet", "no participants yet", "ingen deltakere ennå", "ingen deltagere endnu"),
    ("ui.not_counted", "not counted", "ikke telt", "ikke talt"),
    ("ui.nobody_yet", "nobody to count yet", "ingen å telle ennå", "ingen at tælle endnu"),
    ("ui.over_time", "Over time", "Over tid", "Over tid"),
    (
        "ui.over_time_note",
        "Lines: the share, its 95 % interval as a band; dashed: the target. Hover a point for its figures.",
        "Linjer: andelen, med 95 %-intervallet som et bånd; stiplet: målet. Hold pekeren over et punkt for tallene.",
        "Linjer: andelen, med 95 %-intervallet som et bånd; stiplet: målet. Hold markøren over et punkt for tallene.",
    ),
    ("ui.quarterly_employment", "employment rate per quarter (IPS)", "sysselsettingsrate per kvartal (IPS)", "beskæftigelsesfrekvens pr. kvartal (IPS)"),
    ("ui.by_cohort", "{metric} by year of enrolment", "{metric} etter innskrivingsår", "{metric} efter indskrivningsår"),
    ("ui.measurement_change", "Measurement change (first → last, paired)", "Endring i målinger (første → siste, parvis)", "Ændring i målinger (første → seneste, parvis)"),
    ("ui.change_counts", "{better} better, {same} same, {worse} worse", "{better} bedre, {same} uendret, {worse} verre", "{better} bedre, {same} uændret, {worse} værre"),
    ("ui.no_one_measured_twice", "no one measured twice yet", "ingen målt to ganger ennå", "ingen målt to gange endnu"),
    ("ui.poor_by_wave", "Share \"poor\" per measurement wave", "Andel «dårlig» per målerunde", "Andel »dårlig« pr. målerunde"),
    ("ui.wave", "wave {wave}", "runde {wave}", "runde {wave}"),
    ("ui.no_self_rated_health", "no self-rated health measured", "ingen selvvurdert helse målt", "intet selvvurderet helbred målt"),
    ("ui.caseload", "Caseload per consultant (active)", "Saker per veileder (aktive)", "Sager pr. konsulent (aktive)"),
    ("ui.no_caseload", "no active participants", "ingen aktive deltakere", "ingen aktive deltagere"),
    ("ui.shown_of", "{shown} of {total}", "{shown} av {total}", "{shown} af {total}"),
    ("ui.no_participants", "no participants", "ingen deltakere", "ingen deltagere"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use utfall_events::vocabulary::Status;

    /// An identifier as serde writes it (`no_activity`).
    fn name<T: Serialize>(value: &T) -> String {
        serde_json::to_value(value)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    #[test]
    fn languages_are_read_from_tags_and_accept_language() {
        assert_eq!("nb-NO".parse(), Ok(Language::Nb));
        assert_eq!("no".parse(), Ok(Language::Nb));
        assert_eq!("da_DK".parse(), Ok(Language::Da));
        assert!("fr".parse::<Language>().is_err());
        assert_eq!(Language::negotiate("da-DK,da;q=0.9,en;q=0.8"), Some(Language::Da));
        assert_eq!(Language::negotiate("fr-FR, en;q=0.5, nb;q=0.7"), Some(Language::Nb));
        assert_eq!(Language::negotiate("en;q=0, sv"), None);
        assert_eq!(Language::negotiate(""), None);
    }

    /// Every key has a text in every language, and every identifier a
    /// report shows has a label.
    #[test]
    fn every_identifier_has_a_label_in_every_language() {
        let mut keys: Vec<String> = crate::metrics::SHARES.iter().map(|m| format!("metric.{}", m.name)).collect();
        keys.extend(Status::ALL.iter().map(|s| format!("status.{}", name(s))));
        keys.extend(Status::ALL.iter().map(|s| format!("group.{}", name(&s.outcome_group()))));
        keys.push("group.unknown".into());
        for key in keys {
            for language in [Language::En, Language::Nb, Language::Da] {
                assert!(language.text(&key).is_some_and(|t| !t.is_empty()), "{key} in {language:?}");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        assert!(LABELS.iter().all(|l| seen.insert(l.0)), "a key is listed twice");
    }
}
