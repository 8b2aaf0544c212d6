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
        let primary = tag
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
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

    /// The text of `key` with each `{name}` replaced by its value, in one
    /// pass (a value holding `{…}` stays as it is).
    pub fn fill(self, key: &str, values: &[(&str, &str)]) -> String {
        fill_in(self.text(key).unwrap_or(key), values)
    }

    /// A text shown in an extract's row: a metric, outcome group, exit
    /// reason, summary figure, gender, age band, answer, Methods item,
    /// verdict or basis by its label; anything else (a cohort, an instrument, a number as
    /// text) as it is.
    pub fn cell<'a>(self, text: &'a str) -> std::borrow::Cow<'a, str> {
        [
            "metric", "group", "exit", "figure", "gender", "age", "answer", "item", "verdict", "word",
        ]
        .iter()
        .find_map(|kind| self.text(&format!("{kind}.{text}")))
        .map_or(text.into(), Into::into)
    }

    /// Every text of the catalog in this language, by key.
    pub fn catalog(self) -> BTreeMap<&'static str, &'static str> {
        LABELS.iter().filter_map(|l| Some((l.0, self.text(l.0)?))).collect()
    }
}

/// `template` with each `{name}` replaced by its value, in one pass (a
/// value holding `{…}` stays as it is).
pub(crate) fn fill_in(template: &str, values: &[(&str, &str)]) -> String {
    let mut rest = template;
    let mut out = String::with_capacity(rest.len());
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after
            .find('}')
            .and_then(|close| Some((values.iter().find(|(name, _)| *name == &after[..close])?.1, close)));
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out + rest
}

/// (key, English, bokmål, Danish). `{name}` marks where a figure goes.
const LABELS: &[(&str, &str, &str, &str)] = &[
    ("metric.job_share", "In a job", "I jobb", "I job"),
    (
        "metric.education_share",
        "Started education",
        "Startet utdanning",
        "Startet uddannelse",
    ),
    (
        "metric.never_psychiatric_treatment_share",
        "Never needed psychiatric treatment",
        "Aldri behov for psykiatrisk behandling",
        "Aldrig behov for psykiatrisk behandling",
    ),
    (
        "metric.retained_share",
        "Did not drop out",
        "Falt ikke fra",
        "Faldt ikke fra",
    ),
    (
        "metric.clarified_share",
        "Clarified at exit",
        "Avklart ved avslutning",
        "Afklaret ved afslutning",
    ),
    ("group.job", "Job", "Jobb", "Job"),
    ("group.education", "Education", "Utdanning", "Uddannelse"),
    ("group.activity", "Activity", "Aktivitet", "Aktivitet"),
    ("group.benefit", "Benefit", "Ytelse", "Ydelse"),
    ("group.moved", "Moved", "Flyttet", "Flyttet"),
    ("group.none", "No activity", "Ingen aktivitet", "Ingen aktivitet"),
    (
        "group.unknown",
        "No status yet",
        "Ingen status ennå",
        "Ingen status endnu",
    ),
    ("status.employed", "Employed", "I arbeid", "I beskæftigelse"),
    ("status.apprenticeship", "Apprenticeship", "Lærling", "Lærling"),
    ("status.wage_subsidy", "Wage subsidy", "Lønnstilskudd", "Løntilskud"),
    ("status.education", "Education", "Utdanning", "Uddannelse"),
    (
        "status.activity",
        "Labour-market measure",
        "Arbeidsrettet tiltak",
        "Beskæftigelsesindsats",
    ),
    (
        "status.sheltered_work",
        "Sheltered work",
        "Varig tilrettelagt arbeid",
        "Beskyttet beskæftigelse",
    ),
    (
        "status.work_assessment_allowance",
        "Work assessment allowance",
        "Arbeidsavklaringspenger",
        "Ressourceforløbsydelse",
    ),
    (
        "status.disability_pension",
        "Disability pension",
        "Uføretrygd",
        "Førtidspension",
    ),
    ("status.moved", "Moved", "Flyttet", "Flyttet"),
    (
        "status.no_activity",
        "No activity",
        "Ingen aktivitet",
        "Ingen aktivitet",
    ),
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
    (
        "basis.projected",
        "projected to {date}",
        "framskrevet til {date}",
        "fremskrevet til {date}",
    ),
    ("basis.current", "now", "nå", "nu"),
    ("ui.programmes", "Programmes", "Programmer", "Programmer"),
    ("ui.sign_in", "Sign in", "Logg inn", "Log ind"),
    (
        "ui.sign_in_with_token",
        "Sign in with your utfall token",
        "Logg inn med utfall-nøkkelen din",
        "Log ind med din utfall-nøgle",
    ),
    ("ui.sign_out", "Sign out", "Logg ut", "Log ud"),
    ("ui.participants", "Participants", "Deltakere", "Deltagere"),
    ("ui.enrolled", "enrolled", "innskrevet", "indskrevet"),
    ("ui.active", "active", "aktive", "aktive"),
    ("ui.exited", "exited", "avsluttet", "afsluttet"),
    (
        "ui.contacts_30_days",
        "contacts, last 30 days",
        "kontakter, siste 30 dager",
        "kontakter, seneste 30 dage",
    ),
    (
        "ui.organisation_enrolled",
        "{organisation} · {n} enrolled",
        "{organisation} · {n} innskrevet",
        "{organisation} · {n} indskrevet",
    ),
    (
        "ui.status_distribution",
        "Status distribution (last status)",
        "Fordeling på status (siste status)",
        "Fordeling på status (seneste status)",
    ),
    (
        "ui.outcomes",
        "Outcomes against targets",
        "Resultater mot mål",
        "Resultater mod mål",
    ),
    (
        "ui.as_of",
        "as of {date}, log position {position}",
        "per {date}, loggposisjon {position}",
        "pr. {date}, logposition {position}",
    ),
    (
        "ui.outcomes_note",
        "Bars: the share with its 95 % interval; the tick is the target. On track: the share expected at the programme's end (projected for time-to-event targets) has its 95 % interval on the target's side; hover for it.",
        "Stolper: andelen med 95 %-intervall; streken er målet. I rute: andelen som ventes ved programmets slutt (framskrevet for mål som gjelder tid til en hendelse) har 95 %-intervallet på målets side; hold pekeren over for tallene.",
        "Søjler: andelen med 95 %-interval; stregen er målet. På rette spor: den andel, der ventes ved programmets afslutning (fremskrevet for mål om tid til en hændelse), har sit 95 %-interval på målets side; hold markøren over for tallene.",
    ),
    ("ui.no_target", "no target", "intet mål", "intet mål"),
    ("ui.compare_with", "Compare with", "Sammenlign med", "Sammenlign med"),
    (
        "ui.no_comparison",
        "no comparison",
        "ingen sammenligning",
        "ingen sammenligning",
    ),
    (
        "ui.difference",
        "{value} pp ({low} to {high})",
        "{value} pp ({low} til {high})",
        "{value} pp ({low} til {high})",
    ),
    ("ui.met", "met", "nådd", "nået"),
    ("ui.not_met", "not met", "ikke nådd", "ikke nået"),
    (
        "ui.no_participants_yet",
        "no participants yet",
        "ingen deltakere ennå",
        "ingen deltagere endnu",
    ),
    ("ui.not_counted", "not counted", "ikke telt", "ikke talt"),
    (
        "ui.nobody_yet",
        "nobody to count yet",
        "ingen å telle ennå",
        "ingen at tælle endnu",
    ),
    ("ui.over_time", "Over time", "Over tid", "Over tid"),
    (
        "ui.over_time_note",
        "Lines: the share, its 95 % interval as a band; dashed: the target. Hover a point for its figures.",
        "Linjer: andelen, med 95 %-intervallet som et bånd; stiplet: målet. Hold pekeren over et punkt for tallene.",
        "Linjer: andelen, med 95 %-intervallet som et bånd; stiplet: målet. Hold markøren over et punkt for tallene.",
    ),
    (
        "ui.quarterly_employment",
        "employment rate per quarter (IPS)",
        "sysselsettingsrate per kvartal (IPS)",
        "beskæftigelsesfrekvens pr. kvartal (IPS)",
    ),
    (
        "ui.by_cohort",
        "{metric} by year of enrolment",
        "{metric} etter innskrivingsår",
        "{metric} efter indskrivningsår",
    ),
    (
        "ui.measurement_change",
        "Measurement change (first → last, paired)",
        "Endring i målinger (første → siste, parvis)",
        "Ændring i målinger (første → seneste, parvis)",
    ),
    (
        "ui.change_counts",
        "{better} better, {same} same, {worse} worse",
        "{better} bedre, {same} uendret, {worse} verre",
        "{better} bedre, {same} uændret, {worse} værre",
    ),
    (
        "ui.no_one_measured_twice",
        "no one measured twice yet",
        "ingen målt to ganger ennå",
        "ingen målt to gange endnu",
    ),
    (
        "ui.poor_by_wave",
        "Share \"poor\" per measurement wave",
        "Andel «dårlig» per målerunde",
        "Andel »dårlig« pr. målerunde",
    ),
    ("ui.wave", "wave {wave}", "runde {wave}", "runde {wave}"),
    (
        "ui.no_self_rated_health",
        "no self-rated health measured",
        "ingen selvvurdert helse målt",
        "intet selvvurderet helbred målt",
    ),
    (
        "ui.caseload",
        "Caseload per consultant (active)",
        "Saker per veileder (aktive)",
        "Sager pr. konsulent (aktive)",
    ),
    (
        "ui.no_caseload",
        "no active participants",
        "ingen aktive deltakere",
        "ingen aktive deltagere",
    ),
    (
        "ui.shown_of",
        "{shown} of {total}",
        "{shown} av {total}",
        "{shown} af {total}",
    ),
    (
        "ui.no_participants",
        "no participants",
        "ingen deltakere",
        "ingen deltagere",
    ),
    // Extracts (XLSX and HTML): the sections' sheet names (at most 31
    // characters) and titles, their columns, and the texts in their rows.
    ("sheet.summary", "Participants", "Deltakere", "Deltagere"),
    ("section.summary", "Participants", "Deltakere", "Deltagere"),
    ("sheet.metrics", "Outcome metrics", "Resultater", "Resultater"),
    ("section.metrics", "Outcome metrics", "Resultater", "Resultater"),
    ("sheet.compared", "Compared", "Sammenlignet", "Sammenlignet"),
    (
        "section.compared",
        "Outcome metrics beside another programme's",
        "Resultater sammenlignet med et annet program",
        "Resultater sammenlignet med et andet program",
    ),
    ("column.other_program", "Other programme", "Annet program", "Andet program"),
    ("column.other_numerator", "Its numerator", "Dets teller", "Dets tæller"),
    ("column.other_denominator", "Its denominator", "Dets nevner", "Dets nævner"),
    ("column.other_value", "Its share", "Dets andel", "Dets andel"),
    ("item.compared", "Compared", "Sammenlignet", "Sammenlignet"),
    ("sheet.on_track", "On track", "I rute", "På rette spor"),
    (
        "section.on_track",
        "On track to meet each target by the programme's end (see Methods)",
        "I rute mot hvert mål ved programmets slutt (se Metode)",
        "På rette spor mod hvert mål ved programmets afslutning (se Metode)",
    ),
    (
        "column.ends_on",
        "Programme ends",
        "Programmet slutter",
        "Programmet slutter",
    ),
    ("column.basis", "Basis", "Grunnlag", "Grundlag"),
    (
        "column.expected",
        "Expected share",
        "Forventet andel",
        "Forventet andel",
    ),
    ("column.verdict", "Verdict", "Vurdering", "Vurdering"),
    ("item.on_track", "On track", "I rute", "På rette spor"),
    (
        "sheet.metrics_by_cohort",
        "By year of enrolment",
        "Etter innskrivingsår",
        "Efter indskrivningsår",
    ),
    (
        "section.metrics_by_cohort",
        "Outcome metrics by year of enrolment, each beside the first year's",
        "Resultater etter innskrivingsår, hvert år mot det første",
        "Resultater efter indskrivningsår, hvert år mod det første",
    ),
    (
        "sheet.metrics_at_horizon",
        "At the horizon",
        "Ved horisonten",
        "Ved horisonten",
    ),
    (
        "section.metrics_at_horizon",
        "Outcome metrics at the horizon (see Methods)",
        "Resultater ved horisonten (se Metode)",
        "Resultater ved horisonten (se Metode)",
    ),
    ("sheet.status_distribution", "Status", "Status", "Status"),
    (
        "section.status_distribution",
        "Status at the as-of date by outcome group",
        "Status på datoen, etter resultatgruppe",
        "Status på datoen, efter resultatgruppe",
    ),
    (
        "sheet.measurement_change",
        "Measurement change",
        "Endring i målinger",
        "Ændring i målinger",
    ),
    (
        "section.measurement_change",
        "Measurement change, first to last (paired)",
        "Endring i målinger, første til siste (parvis)",
        "Ændring i målinger, første til seneste (parvis)",
    ),
    (
        "sheet.poor_by_wave",
        "Poor per wave",
        "Dårlig per runde",
        "Dårlig pr. runde",
    ),
    (
        "section.poor_by_wave",
        "Share \"poor\" per measurement wave",
        "Andel «dårlig» per målerunde",
        "Andel »dårlig« pr. målerunde",
    ),
    (
        "sheet.exits_by_reason",
        "Exits by reason",
        "Avslutninger",
        "Afslutninger",
    ),
    (
        "section.exits_by_reason",
        "Exits in the period by reason",
        "Avslutninger i perioden etter årsak",
        "Afslutninger i perioden efter årsag",
    ),
    (
        "sheet.quarterly_employment",
        "Employment per quarter",
        "Sysselsetting per kvartal",
        "Beskæftigelse pr. kvartal",
    ),
    (
        "section.quarterly_employment",
        "Quarterly employment: served in the quarter, worked in it",
        "Sysselsetting per kvartal: fulgt opp i kvartalet, i arbeid i det",
        "Beskæftigelse pr. kvartal: fulgt i kvartalet, i arbejde i det",
    ),
    ("sheet.by_gender", "By gender", "Etter kjønn", "Efter køn"),
    (
        "section.by_gender",
        "Enrolled and in a job by gender",
        "Innskrevet og i jobb etter kjønn",
        "Indskrevet og i job efter køn",
    ),
    (
        "sheet.by_age_band",
        "By age band",
        "Etter aldersgruppe",
        "Efter aldersgruppe",
    ),
    (
        "section.by_age_band",
        "Enrolled and in a job by age band at enrolment",
        "Innskrevet og i jobb etter aldersgruppe ved innskriving",
        "Indskrevet og i job efter aldersgruppe ved indskrivning",
    ),
    ("sheet.methods", "Methods", "Metode", "Metode"),
    ("section.methods", "Methods", "Metode", "Metode"),
    ("sheet.changes", "Changes", "Endringer", "Ændringer"),
    (
        "section.changes",
        "Changes since the previous revision",
        "Endringer siden forrige versjon",
        "Ændringer siden forrige version",
    ),
    ("column.figure", "Figure", "Tall", "Tal"),
    ("column.participants", "Participants", "Deltakere", "Deltagere"),
    ("column.reason", "Reason", "Årsak", "Årsag"),
    ("column.metric", "Metric", "Mål", "Mål"),
    ("column.numerator", "Numerator", "Teller", "Tæller"),
    ("column.denominator", "Denominator", "Nevner", "Nævner"),
    ("column.value", "Share", "Andel", "Andel"),
    (
        "column.ci_low",
        "95 % interval, low",
        "95 %-intervall, nedre",
        "95 %-interval, nedre",
    ),
    (
        "column.ci_high",
        "95 % interval, high",
        "95 %-intervall, øvre",
        "95 %-interval, øvre",
    ),
    ("column.target_op", "Target", "Mål", "Mål"),
    ("column.target_value", "Target value", "Målverdi", "Målværdi"),
    ("column.met", "Met", "Nådd", "Nået"),
    (
        "column.cohort",
        "Year of enrolment",
        "Innskrivingsår",
        "Indskrivningsår",
    ),
    (
        "column.difference",
        "Difference from the first year",
        "Forskjell fra første år",
        "Forskel fra første år",
    ),
    (
        "column.difference_ci_low",
        "Difference, 95 % interval, low",
        "Forskjell, 95 %-intervall, nedre",
        "Forskel, 95 %-interval, nedre",
    ),
    (
        "column.difference_ci_high",
        "Difference, 95 % interval, high",
        "Forskjell, 95 %-intervall, øvre",
        "Forskel, 95 %-interval, øvre",
    ),
    (
        "column.outcome_group",
        "Outcome group",
        "Resultatgruppe",
        "Resultatgruppe",
    ),
    ("column.instrument", "Instrument", "Instrument", "Instrument"),
    ("column.paired", "Measured twice", "Målt to ganger", "Målt to gange"),
    (
        "column.mean_first",
        "Mean, first",
        "Snitt, første",
        "Gennemsnit, første",
    ),
    ("column.mean_last", "Mean, last", "Snitt, siste", "Gennemsnit, seneste"),
    ("column.improved", "Better", "Bedre", "Bedre"),
    ("column.unchanged", "Same", "Uendret", "Uændret"),
    ("column.worse", "Worse", "Verre", "Værre"),
    (
        "column.lowest_composite",
        "Lowest composite",
        "Laveste samleskår",
        "Laveste samlede score",
    ),
    (
        "column.highest_composite",
        "Highest composite",
        "Høyeste samleskår",
        "Højeste samlede score",
    ),
    ("column.wave", "Wave", "Runde", "Runde"),
    ("column.poor", "Poor", "Dårlig", "Dårlig"),
    ("column.measured", "Measured", "Målt", "Målt"),
    ("column.share", "Share", "Andel", "Andel"),
    ("column.quarter", "Quarter", "Kvartal", "Kvartal"),
    ("column.served", "Served", "Fulgt opp", "Fulgt"),
    ("column.employed", "In work", "I arbeid", "I arbejde"),
    ("column.group", "Group", "Gruppe", "Gruppe"),
    ("column.enrolled", "Enrolled", "Innskrevet", "Indskrevet"),
    ("column.job", "In a job", "I jobb", "I job"),
    ("column.job_share", "Share in a job", "Andel i jobb", "Andel i job"),
    ("column.item", "Item", "Punkt", "Punkt"),
    ("column.description", "Description", "Beskrivelse", "Beskrivelse"),
    ("column.section", "Section", "Del", "Afsnit"),
    ("column.row", "Row", "Rad", "Række"),
    ("column.column", "Column", "Kolonne", "Kolonne"),
    ("column.previous", "Previous", "Forrige", "Forrige"),
    ("column.revised", "Revised", "Revidert", "Revideret"),
    (
        "figure.enrolled by the as-of date",
        "Enrolled by the as-of date",
        "Innskrevet per datoen",
        "Indskrevet pr. datoen",
    ),
    (
        "figure.active at the as-of date",
        "Active at the as-of date",
        "Aktive på datoen",
        "Aktive på datoen",
    ),
    (
        "figure.exited by the as-of date",
        "Exited by the as-of date",
        "Avsluttet per datoen",
        "Afsluttet pr. datoen",
    ),
    (
        "figure.enrolled in the period",
        "Enrolled in the period",
        "Innskrevet i perioden",
        "Indskrevet i perioden",
    ),
    (
        "figure.exited in the period",
        "Exited in the period",
        "Avsluttet i perioden",
        "Afsluttet i perioden",
    ),
    (
        "figure.not yet due at the horizon",
        "Not yet due at the horizon",
        "Ikke kommet til horisonten ennå",
        "Endnu ikke nået horisonten",
    ),
    (
        "figure.censored at the horizon",
        "Censored at the horizon",
        "Sensurert ved horisonten",
        "Censureret ved horisonten",
    ),
    ("gender.female", "Female", "Kvinne", "Kvinde"),
    ("gender.male", "Male", "Mann", "Mand"),
    ("gender.other", "Other", "Annet", "Andet"),
    ("gender.unknown", "Unknown", "Ukjent", "Ukendt"),
    ("age.under 25", "Under 25", "Under 25", "Under 25"),
    ("age.50 and over", "50 and over", "50 og over", "50 og derover"),
    ("age.unknown", "Unknown", "Ukjent", "Ukendt"),
    ("word.projected", "projected", "framskrevet", "fremskrevet"),
    ("word.current", "now", "nå", "nu"),
    ("answer.yes", "yes", "ja", "ja"),
    ("answer.no", "no", "nei", "nej"),
    ("item.programme", "Programme", "Program", "Program"),
    ("item.period", "Period", "Periode", "Periode"),
    ("item.as of", "As of", "Per dato", "Pr. dato"),
    ("item.known at", "As known at", "Slik det var kjent", "Som kendt"),
    ("item.log position", "Log position", "Loggposisjon", "Logposition"),
    ("item.software", "Software", "Programvare", "Software"),
    (
        "item.disclosure control",
        "Disclosure control",
        "Skjerming av små tall",
        "Diskretionering",
    ),
    ("item.denominator", "Denominator", "Nevner", "Nævner"),
    ("item.horizon", "Horizon", "Horisont", "Horisont"),
    (
        "item.at the horizon: who is left out",
        "At the horizon: who is left out",
        "Ved horisonten: hvem som holdes utenfor",
        "Ved horisonten: hvem der holdes ude",
    ),
    (
        "item.job_share at the horizon",
        "In a job, at the horizon",
        "I jobb, ved horisonten",
        "I job, ved horisonten",
    ),
    (
        "item.education_share at the horizon",
        "Started education, at the horizon",
        "Startet utdanning, ved horisonten",
        "Startet uddannelse, ved horisonten",
    ),
    (
        "item.never_psychiatric_treatment_share at the horizon",
        "Never needed psychiatric treatment, at the horizon",
        "Aldri behov for psykiatrisk behandling, ved horisonten",
        "Aldrig behov for psykiatrisk behandling, ved horisonten",
    ),
    (
        "item.retained_share at the horizon",
        "Did not drop out, at the horizon",
        "Falt ikke fra, ved horisonten",
        "Faldt ikke fra, ved horisonten",
    ),
    (
        "item.clarified_share at the horizon",
        "Clarified at exit, at the horizon",
        "Avklart ved avslutning, ved horisonten",
        "Afklaret ved afslutning, ved horisonten",
    ),
    ("item.revision", "Revision", "Revisjon", "Revision"),
    (
        "item.quarterly_employment",
        "Employment per quarter",
        "Sysselsetting per kvartal",
        "Beskæftigelse pr. kvartal",
    ),
    (
        "item.metrics_by_cohort",
        "By year of enrolment",
        "Etter innskrivingsår",
        "Efter indskrivningsår",
    ),
    ("report.suppressed", "suppressed", "skjult", "skjult"),
    (
        "report.title",
        "{name}: outcome report {period}",
        "{name}: resultatrapport {period}",
        "{name}: resultatrapport {period}",
    ),
    (
        "report.intro",
        "As of {as_of}, as known at {known_at}. Cells marked {suppressed} rest on fewer than {people} people or would reveal such a cell.",
        "Per {as_of}, slik det var kjent {known_at}. Celler merket {suppressed} bygger på færre enn {people} personer eller ville avsløre en slik celle.",
        "Pr. {as_of}, som kendt {known_at}. Celler markeret {suppressed} bygger på færre end {people} personer eller ville afsløre en sådan celle.",
    ),
    (
        "report.targets",
        "Targets against actual (95 % interval; red: target)",
        "Mål mot resultat (95 %-intervall; rødt: målet)",
        "Mål mod resultat (95 %-interval; rødt: målet)",
    ),
    (
        "report.status",
        "Status at the as-of date",
        "Status på datoen",
        "Status på datoen",
    ),
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
        let title = Language::Nb.fill("report.title", &[("name", "{period} & co"), ("period", "2022")]);
        assert_eq!(title, "{period} & co: resultatrapport 2022", "filled in one pass");
    }

    /// Every key has a text in every language, and every identifier a
    /// report shows has a label.
    #[test]
    fn every_identifier_has_a_label_in_every_language() {
        let mut keys: Vec<String> = crate::metrics::SHARES
            .iter()
            .map(|m| format!("metric.{}", m.name))
            .collect();
        keys.extend(Status::ALL.iter().map(|s| format!("status.{}", name(s))));
        keys.extend(
            Status::ALL
                .iter()
                .map(|s| format!("group.{}", name(&s.outcome_group()))),
        );
        keys.push("group.unknown".into());
        for key in keys {
            for language in [Language::En, Language::Nb, Language::Da] {
                assert!(
                    language.text(&key).is_some_and(|t| !t.is_empty()),
                    "{key} in {language:?}"
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        assert!(LABELS.iter().all(|l| seen.insert(l.0)), "a key is listed twice");
    }
}
