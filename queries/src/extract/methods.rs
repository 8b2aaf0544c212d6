//! The Methods section of an extract: how every figure was made, in the
//! extract's language (English without one, word for word as before
//! languages existed, so earlier extracts reproduce). A metric's English
//! definition is the comment heading its SQL file, the one place it is
//! written; its bokmål and Danish are kept here beside the texts that
//! carry figures.

use chrono::SecondsFormat;

use super::content::{Extract, Kind, Section, Shown};
use crate::horizon::{Anchor, Horizon};
use crate::indicators::Indicator;
use crate::language::{Language, fill_in};
use crate::metrics::{HORIZON_POPULATION, QUARTERLY_EMPLOYMENT, SHARES};

/// How the figures were made, as (item, description) rows.
pub(super) fn section(x: &Extract, indicators: &[Indicator]) -> Section {
    let lang = x.lang.unwrap_or_default();
    let say = |key: &str, values: &[(&str, &str)]| text(lang, key, values);
    let (threshold, primary, secondary) = (x.threshold.to_string(), x.primary.to_string(), x.secondary.to_string());
    let mut rows: Vec<(String, String)> = vec![
        ("programme".into(), format!("{} ({})", x.programme_name, x.program)),
        (
            "period".into(),
            say(
                "period",
                &[
                    ("period", &x.period.to_string()),
                    ("first", &x.period.first.to_string()),
                    ("last", &x.period.last.to_string()),
                ],
            ),
        ),
        ("as of".into(), x.as_of.to_string()),
        (
            "known at".into(),
            x.known_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        ),
        ("log position".into(), x.log_position.to_string()),
        ("software".into(), format!("utfall {}", env!("CARGO_PKG_VERSION"))),
        (
            "disclosure control".into(),
            say(
                "disclosure control",
                &[("t", &threshold), ("p", &primary), ("s", &secondary)],
            ),
        ),
        ("denominator".into(), say("denominator", &[])),
    ];
    for m in SHARES {
        rows.push((m.name.to_string(), defined(lang, m.name, m.sql)));
    }
    rows.push((
        "quarterly_employment".into(),
        defined(lang, "quarterly_employment", QUARTERLY_EMPLOYMENT),
    ));
    if let Some(other) = &x.compare_with {
        rows.push(("compared".into(), say("compared", &[("other", other)])));
    }
    rows.push(("on_track".into(), say("on_track", &[])));
    rows.push(("metrics_by_cohort".into(), say("metrics_by_cohort", &[])));
    for i in indicators {
        rows.push((
            i.name.clone(),
            say(
                "indicator",
                &[
                    ("description", &i.description),
                    ("denominator", i.denominator.as_deref().unwrap_or("TRUE")),
                    ("numerator", &i.numerator),
                ],
            ),
        ));
    }
    if let Some(h) = &x.horizon {
        rows.push(("horizon".into(), horizon(lang, h)));
        let left_out = "at the horizon: who is left out";
        rows.push((left_out.into(), defined(lang, left_out, HORIZON_POPULATION)));
        for m in SHARES {
            let item = format!("{} at the horizon", m.name);
            let definition = defined(lang, &item, m.at_horizon);
            rows.push((item, definition));
        }
    }
    Section {
        name: "methods",
        title: "Methods",
        columns: vec![("item", Kind::Text), ("description", Kind::Text)],
        keys: 1,
        rows: rows
            .into_iter()
            .map(|(a, b)| vec![Shown::Text(a), Shown::Text(b)])
            .collect(),
    }
}

/// The Methods row saying which revision an extract replaces.
pub(super) fn revision_note(lang: Language, revision: u32, replaced: u32, known_at: &str) -> Vec<Shown> {
    let note = text(
        lang,
        "revision",
        &[
            ("revision", &revision.to_string()),
            ("replaced", &replaced.to_string()),
            ("known_at", known_at),
        ],
    );
    vec![Shown::Text("revision".into()), Shown::Text(note)]
}

fn horizon(lang: Language, h: &Horizon) -> String {
    let anchor = match h.from {
        Anchor::Enrolment => "enrolment",
        Anchor::Exit => "exit",
    };
    let months = h.months.to_string();
    let named = text(lang, &format!("after {anchor}"), &[("months", &months)]);
    let censoring = text(lang, if h.censor { "censored" } else { "not censored" }, &[]);
    text(lang, "horizon", &[("horizon", &named), ("censoring", &censoring)])
}

/// A metric's definition: in English the comment heading its SQL file.
fn defined(lang: Language, item: &str, sql: &str) -> String {
    let translated = DEFINED.iter().find(|d| d.0 == item).and_then(|d| match lang {
        Language::En => None,
        Language::Nb => Some(d.1),
        Language::Da => Some(d.2),
    });
    translated.map_or_else(|| comment(sql), str::to_string)
}

/// The comment lines heading a SQL file, as one line.
fn comment(sql: &str) -> String {
    sql.lines()
        .take_while(|l| l.starts_with("--"))
        .map(|l| l.trim_start_matches("--").trim())
        .collect::<Vec<_>>()
        .join(" ")
}

fn text(lang: Language, key: &str, values: &[(&str, &str)]) -> String {
    let template = TEXTS.iter().find(|t| t.0 == key).map_or(key, |t| match lang {
        Language::En => t.1,
        Language::Nb => t.2,
        Language::Da => t.3,
    });
    fill_in(template, values)
}

/// Texts of the section, (key, English, bokmål, Danish); `{name}` marks
/// where a figure goes.
const TEXTS: &[(&str, &str, &str, &str)] = &[
    (
        "period",
        "{period} ({first} to {last})",
        "{period} ({first} til {last})",
        "{period} ({first} til {last})",
    ),
    (
        "disclosure control",
        "counts from 1 to {t} are suppressed, and shares and means resting on 1 to {t} people or on a suppressed count; \
         further cells are suppressed so that none can be worked back from totals: {p} cells suppressed as small, {s} to protect them",
        "antall fra 1 til {t} er skjult, og likeså andeler og gjennomsnitt som bygger på 1 til {t} personer eller på et skjult antall; \
         flere celler er skjult slik at ingen kan regnes tilbake fra summer: {p} celler skjult som små, {s} for å beskytte dem",
        "antal fra 1 til {t} er skjult, og ligeså andele og gennemsnit, der bygger på 1 til {t} personer eller på et skjult antal; \
         yderligere celler er skjult, så ingen kan regnes tilbage fra totaler: {p} celler skjult som små, {s} for at beskytte dem",
    ),
    (
        "denominator",
        "participants enrolled on or before the as-of date (intention to treat); clarified_share: exited participants",
        "deltakere innskrevet på eller før datoen (intention to treat); clarified_share: deltakere som har avsluttet",
        "deltagere indskrevet på eller før datoen (intention to treat); clarified_share: udskrevne deltagere",
    ),
    (
        "compared",
        "each share beside programme {other}'s, as of the same date and as known at the same time; difference: \
         this programme's share less {other}'s, with its 95 % interval by Newcombe's hybrid score method; \
         {other}'s counts are under the same disclosure control",
        "hver andel ved siden av andelen i programmet {other}, per samme dato og slik det var kjent på samme tidspunkt; differanse: \
         dette programmets andel minus andelen i {other}, med 95 %-intervall etter Newcombes hybride scoremetode; \
         antallene i {other} er skjermet på samme måte",
        "hver andel ved siden af andelen i programmet {other}, pr. samme dato og som kendt på samme tidspunkt; forskel: \
         dette programs andel minus andelen i {other}, med 95 %-interval efter Newcombes hybride scoremetode; \
         antallene i {other} er diskretioneret på samme måde",
    ),
    (
        "on_track",
        "for each target, the share expected at the programme's end (ends_on) with its 95 % interval: for job, education, \
         psychiatric treatment and dropping out, projected by Kaplan-Meier from each active participant's follow-up now to \
         the end (basis projected); otherwise, or when the end has passed, the share now (basis current). on_track: the \
         interval lies on the target's side; off_track: wholly on the other; uncertain: it holds the target",
        "for hvert mål, andelen som forventes ved programmets slutt (ends_on) med 95 %-intervall: for jobb, utdanning, \
         psykiatrisk behandling og frafall framskrevet med Kaplan-Meier fra hver aktive deltakers oppfølgingstid nå til \
         slutten (grunnlag framskrevet); ellers, eller når slutten er passert, andelen nå (grunnlag nå). I rute: \
         intervallet ligger på målets side; ikke i rute: helt på den andre siden; usikkert: intervallet omfatter målet",
        "for hvert mål, den andel der forventes ved programmets afslutning (ends_on) med 95 %-interval: for job, uddannelse, \
         psykiatrisk behandling og frafald fremskrevet med Kaplan-Meier fra hver aktiv deltagers opfølgningstid nu til \
         afslutningen (grundlag fremskrevet); ellers, eller når afslutningen er passeret, andelen nu (grundlag nu). På rette \
         spor: intervallet ligger på målets side; ikke på rette spor: helt på den anden side; usikkert: intervallet omfatter målet",
    ),
    (
        "metrics_by_cohort",
        "participants by the calendar year they enrolled, each share counted as the programme's; difference: \
         the cohort's share less the first cohort's, with its 95 % interval by Newcombe's hybrid score method",
        "deltakere etter kalenderåret de ble innskrevet, hver andel talt som for programmet; differanse: \
         kullets andel minus det første kullets, med 95 %-intervall etter Newcombes hybride scoremetode",
        "deltagere efter det kalenderår, de blev indskrevet, hver andel talt som for programmet; forskel: \
         årgangens andel minus den første årgangs, med 95 %-interval efter Newcombes hybride scoremetode",
    ),
    (
        "indicator",
        "{description} (the programme's own indicator) — denominator: participants where {denominator}; numerator: those of them where {numerator}",
        "{description} (programmets egen indikator) — nevner: deltakere der {denominator}; teller: de av dem der {numerator}",
        "{description} (programmets egen indikator) — nævner: deltagere hvor {denominator}; tæller: de af dem hvor {numerator}",
    ),
    (
        "after enrolment",
        "{months} months after enrolment",
        "{months} måneder etter innskriving",
        "{months} måneder efter indskrivning",
    ),
    (
        "after exit",
        "{months} months after exit",
        "{months} måneder etter avslutning",
        "{months} måneder efter udskrivning",
    ),
    (
        "horizon",
        "{horizon}: the status counted is the one in force on each participant's horizon day; \
         those whose day had not come by the as-of date are not yet due and are left out of the denominators; {censoring}",
        "{horizon}: statusen som telles, er den som gjaldt på hver deltakers horisontdag; \
         de som ikke hadde nådd sin dag innen datoen, er ikke forfalt ennå og holdes utenfor nevnerne; {censoring}",
        "{horizon}: den status, der tælles, er den, der gjaldt på hver deltagers horisontdag; \
         de, hvis dag ikke var kommet inden datoen, er endnu ikke forfaldne og holdes uden for nævnerne; {censoring}",
    ),
    (
        "censored",
        "participants who exited as moved or deceased before their horizon day are censored (left out)",
        "deltakere som avsluttet fordi de flyttet eller døde før horisontdagen, er sensurert (holdt utenfor)",
        "deltagere, der blev udskrevet, fordi de flyttede eller døde før horisontdagen, er censureret (holdt ude)",
    ),
    (
        "not censored",
        "nobody is censored: those who moved away or died count as not reaching the outcome",
        "ingen er sensurert: de som flyttet eller døde, telles som at de ikke nådde resultatet",
        "ingen er censureret: de, der flyttede eller døde, tælles som ikke at have nået resultatet",
    ),
    (
        "revision",
        "revision {revision}: replaces revision {replaced} (known at {known_at}); the changes section lists every figure that differs",
        "revisjon {revision}: erstatter revisjon {replaced} (slik det var kjent {known_at}); endringsdelen viser hvert tall som er endret",
        "revision {revision}: erstatter revision {replaced} (som kendt {known_at}); ændringsafsnittet viser hvert tal, der er ændret",
    ),
];

/// The definitions whose English heads a SQL file, (item, bokmål, Danish).
const DEFINED: &[(&str, &str, &str)] = &[
    (
        "job_share",
        "job_share: deltakere som har hatt en status i resultatgruppen `job` på et tidspunkt fram til datoen, av alle deltakere innskrevet innen da.",
        "job_share: deltagere, der har haft en status i resultatgruppen `job` på et tidspunkt frem til datoen, ud af alle deltagere indskrevet inden da.",
    ),
    (
        "education_share",
        "education_share: deltakere som har hatt status `education` på et tidspunkt fram til datoen, av alle deltakere innskrevet innen da. \
         (Status `education` er den eneste statusen i resultatgruppen `education`.)",
        "education_share: deltagere, der har haft status `education` på et tidspunkt frem til datoen, ud af alle deltagere indskrevet inden da. \
         (Status `education` er den eneste status i resultatgruppen `education`.)",
    ),
    (
        "never_psychiatric_treatment_share",
        "never_psychiatric_treatment_share: deltakere uten `psychiatric_treatment_started` fram til datoen, av alle deltakere innskrevet innen da.",
        "never_psychiatric_treatment_share: deltagere uden `psychiatric_treatment_started` frem til datoen, ud af alle deltagere indskrevet inden da.",
    ),
    (
        "retained_share",
        "retained_share: deltakere som ikke har avsluttet med årsak `dropped_out`, av alle deltakere innskrevet innen datoen.",
        "retained_share: deltagere, der ikke er udskrevet med årsag `dropped_out`, ud af alle deltagere indskrevet inden datoen.",
    ),
    (
        "clarified_share",
        "clarified_share: avsluttede deltakere med avslutningsårsak `completed` eller `transferred` og siste status i \
         resultatgruppen `job`, `education`, `activity` eller `benefit`, av alle avsluttede deltakere.",
        "clarified_share: udskrevne deltagere med udskrivningsårsag `completed` eller `transferred` og seneste status i \
         resultatgruppen `job`, `education`, `activity` eller `benefit`, ud af alle udskrevne deltagere.",
    ),
    (
        "quarterly_employment",
        "quarterly_employment (IPS-konvensjonen): per program og kalenderkvartal, deltakerne som fikk tilbudet i kvartalet \
         (innskrevet innen kvartalets slutt og ikke avsluttet før starten) og de av dem som hadde en status i resultatgruppen \
         `job` på et tidspunkt i kvartalet mens de fikk tilbudet. Kvartalet med datoen telles fram til datoen.",
        "quarterly_employment (IPS-konventionen): pr. program og kvartal, deltagerne, der var i forløb i kvartalet \
         (indskrevet inden kvartalets slutning og ikke udskrevet før dets start), og de af dem, der havde en status i \
         resultatgruppen `job` på et tidspunkt i kvartalet, mens de var i forløb. Kvartalet med datoen tælles frem til datoen.",
    ),
    (
        "at the horizon: who is left out",
        "Hvem et mål ved en horisont holder utenfor, per program: deltakere hvis horisontdag ikke var kommet innen datoen \
         (ikke forfalt ennå), og, når rapporten sensurerer, de som flyttet eller døde før den (sensurert).",
        "Hvem et mål ved en horisont holder ude, pr. program: deltagere, hvis horisontdag ikke var kommet inden datoen \
         (endnu ikke forfaldne), og, når rapporten censurerer, de, der flyttede eller døde før den (censureret).",
    ),
    (
        "job_share at the horizon",
        "job_share ved en horisont: deltakere med en status i resultatgruppen `job` på horisontdagen, av dem hvis \
         horisontdag var kommet innen datoen (minus de sensurerte).",
        "job_share ved en horisont: deltagere med en status i resultatgruppen `job` på horisontdagen, ud af dem, hvis \
         horisontdag var kommet inden datoen (fratrukket de censurerede).",
    ),
    (
        "education_share at the horizon",
        "education_share ved en horisont: deltakere med status `education` på horisontdagen, av dem hvis horisontdag \
         var kommet innen datoen (minus de sensurerte).",
        "education_share ved en horisont: deltagere med status `education` på horisontdagen, ud af dem, hvis \
         horisontdag var kommet inden datoen (fratrukket de censurerede).",
    ),
    (
        "never_psychiatric_treatment_share at the horizon",
        "never_psychiatric_treatment_share ved en horisont: deltakere uten påbegynt psykiatrisk behandling fram til \
         horisontdagen, av dem hvis horisontdag var kommet innen datoen (minus de sensurerte).",
        "never_psychiatric_treatment_share ved en horisont: deltagere uden påbegyndt psykiatrisk behandling frem til \
         horisontdagen, ud af dem, hvis horisontdag var kommet inden datoen (fratrukket de censurerede).",
    ),
    (
        "retained_share at the horizon",
        "retained_share ved en horisont: deltakere som ikke hadde avsluttet med årsak `dropped_out` innen \
         horisontdagen, av dem hvis horisontdag var kommet innen datoen (minus de sensurerte).",
        "retained_share ved en horisont: deltagere, der ikke var udskrevet med årsag `dropped_out` inden \
         horisontdagen, ud af dem, hvis horisontdag var kommet inden datoen (fratrukket de censurerede).",
    ),
    (
        "clarified_share at the horizon",
        "clarified_share ved en horisont: av dem som hadde avsluttet innen horisontdagen (og hvis horisontdag var kommet \
         innen datoen, minus de sensurerte), de som avsluttet med årsak `completed` eller `transferred` og hadde en status \
         i resultatgruppen `job`, `education`, `activity` eller `benefit` på horisontdagen (den siste registrerte).",
        "clarified_share ved en horisont: af dem, der var udskrevet inden horisontdagen (og hvis horisontdag var kommet \
         inden datoen, fratrukket de censurerede), de, der blev udskrevet med årsag `completed` eller `transferred` og \
         havde en status i resultatgruppen `job`, `education`, `activity` eller `benefit` på horisontdagen (den seneste registrerede).",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every definition and text has its bokmål and Danish, and the
    /// English ones carry the same figures as the translations.
    #[test]
    fn every_methods_text_is_in_every_language() {
        let mut items: Vec<String> = SHARES.iter().map(|m| m.name.to_string()).collect();
        items.extend(SHARES.iter().map(|m| format!("{} at the horizon", m.name)));
        items.push("quarterly_employment".into());
        items.push("at the horizon: who is left out".into());
        for item in &items {
            assert!(DEFINED.iter().any(|d| d.0 == item), "{item} has no translation");
        }
        assert_eq!(DEFINED.len(), items.len(), "a translation of no definition");
        let figures = |t: &'static str| {
            let mut names: Vec<&str> = t
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|s| s.0))
                .collect();
            names.sort_unstable();
            names.dedup();
            names
        };
        for (key, en, nb, da) in TEXTS {
            assert_eq!(figures(en), figures(nb), "{key} in bokmål");
            assert_eq!(figures(en), figures(da), "{key} in Danish");
        }
    }

    #[test]
    fn english_definitions_are_their_sql_files_comments() {
        let job = SHARES.iter().find(|m| m.name == "job_share").expect("job_share");
        assert_eq!(defined(Language::En, "job_share", job.sql), comment(job.sql));
        assert!(comment(job.sql).starts_with("job_share: participants who had"));
        assert!(defined(Language::Nb, "job_share", job.sql).starts_with("job_share: deltakere"));
    }
}
