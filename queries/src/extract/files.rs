//! An extract's files: one workbook with a sheet per section, one CSV and
//! one Parquet file per section, one self-contained HTML page, and
//! `manifest.json` with every file's SHA-256. The same extract always gives
//! the same bytes.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::content::{Extract, Kind, Section, Shown};
use crate::QueryError;
use crate::language::Language;
use crate::metrics::SHARES;

/// What marks a suppressed cell in text formats.
pub const SUPPRESSED: &str = "suppressed";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Xlsx,
    Csv,
    Parquet,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "xlsx" => Ok(Format::Xlsx),
            "csv" => Ok(Format::Csv),
            "parquet" => Ok(Format::Parquet),
            "html" => Ok(Format::Html),
            other => Err(format!("unknown format {other:?} (xlsx, csv, parquet, html)")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileHash {
    pub file: String,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Replaced {
    pub revision: u32,
    pub known_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub program: String,
    pub period: String,
    pub as_of: String,
    pub known_at: String,
    pub log_position: i64,
    pub software_version: String,
    pub threshold: u64,
    /// The horizon of the metrics at a horizon, when the extract has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<crate::horizon::Horizon>,
    /// Another programme each share is set beside, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_with: Option<String>,
    /// The language of the XLSX and HTML files, when one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<Language>,
    /// 1 for the first delivery; manifests written before revisions have none.
    #[serde(default = "first_revision")]
    pub revision: u32,
    /// The revision this one replaces, which its changes section compares with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<Replaced>,
    pub formats: Vec<Format>,
    pub files: Vec<FileHash>,
    pub metric_definitions: Vec<FileHash>,
}

/// How the manifest writes a known-at time (and `--reproduce` reads it back).
pub fn timestamp(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn first_revision() -> u32 {
    1
}

pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every file of the extract in `formats`, manifest last.
pub fn render(x: &Extract, formats: &[Format]) -> Result<Vec<(String, Vec<u8>)>, QueryError> {
    let mut files = Vec::new();
    for format in formats {
        match format {
            Format::Xlsx => files.push(("report.xlsx".into(), xlsx(x, Words(x.lang))?)),
            Format::Csv => {
                for s in &x.sections {
                    files.push((format!("{}.csv", s.name), csv(s).into_bytes()));
                }
            }
            Format::Parquet => {
                for s in &x.sections {
                    files.push((format!("{}.parquet", s.name), parquet(s)?));
                }
            }
            Format::Html => files.push(("report.html".into(), html(x, Words(x.lang)).into_bytes())),
        }
    }
    let manifest = Manifest {
        program: x.program.clone(),
        period: x.period.to_string(),
        as_of: x.as_of.to_string(),
        known_at: timestamp(&x.known_at),
        log_position: x.log_position,
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        threshold: x.threshold,
        horizon: x.horizon,
        compare_with: x.compare_with.clone(),
        lang: x.lang,
        revision: x.revision,
        replaces: x.replaces.clone(),
        formats: formats.to_vec(),
        files: files
            .iter()
            .map(|(file, bytes)| FileHash {
                file: file.clone(),
                sha256: sha256(bytes),
            })
            .collect(),
        metric_definitions: SHARES
            .iter()
            .map(|m| FileHash {
                file: format!("queries/sql/metrics/{}.sql", m.name),
                sha256: sha256(m.sql.as_bytes()),
            })
            .collect(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(engine)?;
    json.push(b'\n');
    files.push(("manifest.json".into(), json));
    Ok(files)
}

/// How the XLSX and HTML files name sections, columns and row labels:
/// in the extract's language, or by identifier when it has none (as
/// before languages existed, so earlier extracts reproduce byte for byte).
#[derive(Clone, Copy)]
struct Words(Option<Language>);

impl Words {
    fn sheet<'a>(self, s: &'a Section) -> Cow<'a, str> {
        self.key("sheet", s.name).unwrap_or(s.name.into())
    }

    fn title<'a>(self, s: &'a Section) -> Cow<'a, str> {
        self.key("section", s.name).unwrap_or(s.title.into())
    }

    fn column<'a>(self, column: &'a str) -> Cow<'a, str> {
        self.key("column", column).unwrap_or(column.into())
    }

    fn key(self, kind: &str, id: &str) -> Option<Cow<'static, str>> {
        self.0?.text(&format!("{kind}.{id}")).map(Into::into)
    }

    fn value(self, v: &Shown) -> String {
        match (self.0, v) {
            (Some(language), Shown::Text(t)) => language.cell(t).into_owned(),
            (_, Shown::Suppressed) => self.suppressed().to_string(),
            _ => text(v),
        }
    }

    fn suppressed(self) -> &'static str {
        self.0.and_then(|l| l.text("report.suppressed")).unwrap_or(SUPPRESSED)
    }

    /// A text of the report itself (English without a language).
    fn report(self, key: &str, values: &[(&str, &str)]) -> String {
        self.0.unwrap_or_default().fill(key, values)
    }
}

pub(super) fn text(v: &Shown) -> String {
    match v {
        Shown::Text(t) => t.clone(),
        Shown::Integer(i) => i.to_string(),
        Shown::Decimal(d) => format!("{d:.6}"),
        Shown::Suppressed => SUPPRESSED.into(),
        Shown::Empty => String::new(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A text cell as a spreadsheet must not take it: one starting with `=`,
/// `+`, `-`, `@`, a tab or a carriage return would be run as a formula
/// (OWASP's CSV injection guidance), so it gets a leading apostrophe.
/// Numbers are written as numbers and never changed.
fn inert(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

fn csv(s: &Section) -> String {
    let mut out = s.columns.iter().map(|c| c.0).collect::<Vec<_>>().join(",") + "\n";
    for row in &s.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| match v {
                Shown::Text(t) => csv_field(&inert(t.clone())),
                other => csv_field(&text(other)),
            })
            .collect();
        out += &(cells.join(",") + "\n");
    }
    out
}

/// Typed columns; a suppressed cell is NULL with `<column>_suppressed` true.
fn parquet(s: &Section) -> Result<Vec<u8>, QueryError> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, (name, kind)) in s.columns.iter().enumerate() {
        let cells: Vec<&Shown> = s.rows.iter().map(|r| &r[i]).collect();
        let (field, column): (Field, ArrayRef) = match kind {
            Kind::Text => (
                Field::new(*name, DataType::Utf8, true),
                Arc::new(
                    cells
                        .iter()
                        .map(|v| match v {
                            Shown::Empty => None,
                            v => Some(text(v)),
                        })
                        .collect::<StringArray>(),
                ),
            ),
            Kind::Integer => (
                Field::new(*name, DataType::Int64, true),
                Arc::new(
                    cells
                        .iter()
                        .map(|v| match v {
                            Shown::Integer(i) => Some(*i),
                            Shown::Decimal(d) => Some(*d as i64),
                            _ => None,
                        })
                        .collect::<Int64Array>(),
                ),
            ),
            Kind::Decimal | Kind::Share => (
                Field::new(*name, DataType::Float64, true),
                Arc::new(
                    cells
                        .iter()
                        .map(|v| match v {
                            Shown::Decimal(d) => Some(*d),
                            Shown::Integer(i) => Some(*i as f64),
                            _ => None,
                        })
                        .collect::<Float64Array>(),
                ),
            ),
        };
        fields.push(field);
        columns.push(column);
        if *kind != Kind::Text {
            fields.push(Field::new(format!("{name}_suppressed"), DataType::Boolean, false));
            columns.push(Arc::new(
                cells
                    .iter()
                    .map(|v| Some(**v == Shown::Suppressed))
                    .collect::<arrow::array::BooleanArray>(),
            ));
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).map_err(engine)?;
    writer.write(&batch).map_err(engine)?;
    writer.into_inner().map_err(engine)
}

fn engine(e: impl std::fmt::Display) -> QueryError {
    QueryError::Engine(e.to_string())
}

/// One sheet per section: numbers as numbers, shares as percentages, a
/// bold frozen header row. The creation time is the known-at time, so the
/// same extract gives the same bytes.
fn xlsx(x: &Extract, words: Words) -> Result<Vec<u8>, QueryError> {
    use rust_xlsxwriter::{Color, DocProperties, Format as Style, Workbook};
    let mut book = Workbook::new();
    book.set_properties(
        &DocProperties::new()
            .set_title(format!("{}: outcome report {}", x.programme_name, x.period))
            .set_creation_datetime(&x.known_at),
    );
    let header = Style::new().set_bold();
    let percent = Style::new().set_num_format("0.0%");
    let decimal = Style::new().set_num_format("0.00");
    let suppressed = Style::new().set_italic().set_font_color(Color::Gray);
    for s in &x.sections {
        let sheet = book.add_worksheet();
        sheet.set_name(words.sheet(s)).map_err(engine)?;
        for (c, (name, _)) in s.columns.iter().enumerate() {
            sheet
                .write_string_with_format(0, c as u16, words.column(name), &header)
                .map_err(engine)?;
        }
        for (r, row) in s.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, (v, (_, kind))) in row.iter().zip(&s.columns).enumerate() {
                let c = c as u16;
                match (v, kind) {
                    // A string cell, never a formula, whatever it starts with.
                    (Shown::Text(_), _) => sheet.write_string(r, c, inert(words.value(v))),
                    (Shown::Integer(i), _) => sheet.write_number(r, c, *i as f64),
                    (Shown::Decimal(d), Kind::Share) => sheet.write_number_with_format(r, c, *d, &percent),
                    (Shown::Decimal(d), _) => sheet.write_number_with_format(r, c, *d, &decimal),
                    (Shown::Suppressed, _) => sheet.write_string_with_format(r, c, words.suppressed(), &suppressed),
                    (Shown::Empty, _) => continue,
                }
                .map_err(engine)?;
            }
        }
        sheet.set_freeze_panes(1, 0).map_err(engine)?;
        sheet.autofit();
    }
    book.save_to_buffer().map_err(engine)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One bar of a chart: a share (None when suppressed), its interval and
/// the target.
struct Bar {
    label: String,
    value: Option<f64>,
    interval: Option<(f64, f64)>,
    target: Option<f64>,
}

/// Horizontal bars as inline SVG.
fn bars(rows: &[Bar]) -> String {
    let (width, row_h) = (520.0, 26.0);
    let height = row_h * rows.len() as f64 + 10.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img">"#,
        width + 280.0
    );
    for (
        i,
        Bar {
            label,
            value,
            interval,
            target,
        },
    ) in rows.iter().enumerate()
    {
        let y = 5.0 + row_h * i as f64;
        let _ = write!(
            svg,
            r#"<text x="0" y="{}" font-size="13">{}</text>"#,
            y + 16.0,
            escape(label)
        );
        let _ = write!(
            svg,
            r##"<rect x="270" y="{}" width="{width}" height="16" fill="#eef0f4"/>"##,
            y + 3.0
        );
        match value {
            Some(v) => {
                let _ = write!(
                    svg,
                    r##"<rect x="270" y="{}" width="{:.1}" height="16" fill="#2f6db5"/>"##,
                    y + 3.0,
                    width * v
                );
                if let Some((lo, hi)) = interval {
                    let _ = write!(
                        svg,
                        r##"<line x1="{:.1}" x2="{:.1}" y1="{y2}" y2="{y2}" stroke="#1d2433" stroke-width="2"/>"##,
                        270.0 + width * lo,
                        270.0 + width * hi,
                        y2 = y + 11.0
                    );
                }
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<text x="276" y="{}" font-size="12" fill="#5b6477">{SUPPRESSED}</text>"##,
                    y + 16.0
                );
            }
        }
        if let Some(t) = target {
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#c0392b" stroke-width="2"/>"##,
                y,
                y + 22.0,
                x = 270.0 + width * t
            );
        }
    }
    svg + "</svg>"
}

fn section<'a>(x: &'a Extract, name: &str) -> Option<&'a Section> {
    x.sections.iter().find(|s| s.name == name)
}

fn decimal(v: &Shown) -> Option<f64> {
    match v {
        Shown::Decimal(d) => Some(*d),
        Shown::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

/// One page, no external assets, printable.
fn html(x: &Extract, words: Words) -> String {
    let name = escape(&x.programme_name);
    let period = x.period.to_string();
    let heading = words.report("report.title", &[("name", &name), ("period", &period)]);
    let suppressed = format!("<i>{}</i>", words.suppressed());
    let intro = words.report(
        "report.intro",
        &[
            ("as_of", &x.as_of.to_string()),
            ("known_at", &x.known_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            ("suppressed", &suppressed),
            ("people", &(x.threshold + 1).to_string()),
        ],
    );
    let mut page = format!(
        r#"<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{name} — {period}</title>
<style>
body {{ font: 14px/1.45 system-ui, "Segoe UI", Roboto, sans-serif; color: #1d2433; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }}
h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 2rem; }}
table {{ border-collapse: collapse; margin: .5rem 0; }} td, th {{ padding: .2rem .6rem; border-bottom: 1px solid #d9dde5; text-align: left; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }} td.s {{ color: #5b6477; font-style: italic; }}
@media print {{ body {{ margin: 0; }} h2 {{ break-after: avoid; }} table, svg {{ break-inside: avoid; }} }}
</style></head><body>
<h1>{heading}</h1>
<p>{intro}</p>
"#,
        lang = words.0.unwrap_or_default().code(),
    );
    if let Some(m) = section(x, "metrics") {
        let rows: Vec<_> = m
            .rows
            .iter()
            .map(|r| Bar {
                label: words.value(&r[0]),
                value: decimal(&r[3]),
                interval: decimal(&r[4]).zip(decimal(&r[5])),
                target: decimal(&r[7]),
            })
            .collect();
        page += &format!("<h2>{}</h2>\n", words.report("report.targets", &[]));
        page += &bars(&rows);
    }
    if let Some(d) = section(x, "status_distribution") {
        let total: f64 = x
            .sections
            .iter()
            .find(|s| s.name == "summary")
            .and_then(|s| s.rows.first())
            .and_then(|r| decimal(&r[1]))
            .unwrap_or(0.0);
        let rows: Vec<_> = d
            .rows
            .iter()
            .map(|r| Bar {
                label: words.value(&r[0]),
                value: decimal(&r[1]).filter(|_| total > 0.0).map(|n| n / total),
                interval: None,
                target: None,
            })
            .collect();
        page += &format!("<h2>{}</h2>\n", words.report("report.status", &[]));
        page += &bars(&rows);
    }
    for s in &x.sections {
        let _ = write!(page, "\n<h2>{}</h2>\n<table><tr>", escape(&words.title(s)));
        for (c, _) in &s.columns {
            let _ = write!(page, "<th>{}</th>", escape(&words.column(c)));
        }
        page += "</tr>\n";
        for row in &s.rows {
            page += "<tr>";
            for v in row {
                let class = match v {
                    Shown::Integer(_) | Shown::Decimal(_) => " class=\"n\"",
                    Shown::Suppressed => " class=\"s\"",
                    _ => "",
                };
                let _ = write!(page, "<td{class}>{}</td>", escape(&words.value(v)));
            }
            page += "</tr>\n";
        }
        page += "</table>\n";
    }
    page + "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_a_spreadsheet_would_run_is_made_inert_and_numbers_are_not() {
        let section = Section {
            name: "summary",
            title: "Summary",
            columns: vec![("item", Kind::Text), ("value", Kind::Integer)],
            keys: 1,
            rows: vec![
                vec![Shown::Text("=HYPERLINK(\"http://x\",\"y\")".into()), Shown::Integer(-3)],
                vec![Shown::Text("@SUM(A1)".into()), Shown::Decimal(-0.5)],
                vec![Shown::Text("Nav Trysil".into()), Shown::Integer(5)],
            ],
        };
        assert_eq!(
            csv(&section),
            "item,value\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-3\n'@SUM(A1),-0.500000\nNav Trysil,5\n"
        );
        for risky in ["+1", "-1", "\tx", "\rx"] {
            assert!(inert(risky.into()).starts_with('\''));
        }
    }
}
