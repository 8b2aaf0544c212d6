//! Query answers in the formats evaluators ask for.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow::csv::WriterBuilder;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::ipc::writer::StreamWriter;
use arrow::json::WriterBuilder as JsonWriterBuilder;
use arrow::json::writer::JsonArray;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow::util::pretty::pretty_format_batches;
use parquet::arrow::ArrowWriter;

use crate::engine::Answer;
use crate::outcomes::{CohortMetric, MetricValue};
use crate::{Outcomes, QueryError};

/// A text table for a terminal.
pub fn table(answer: &Answer) -> Result<String, QueryError> {
    if answer.batches.is_empty() {
        let names: Vec<&str> = answer.schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Ok(format!("{}\n(0 rows)", names.join(" | ")));
    }
    Ok(pretty_format_batches(&answer.batches)?.to_string())
}

/// CSV with a header row, UTF-8. Lists and structs are written as text
/// (`[youth, immigrant]`), which CSV has no type for.
pub fn csv(answer: &Answer) -> Result<Vec<u8>, QueryError> {
    let mut out = Vec::new();
    let mut writer = WriterBuilder::new().with_header(true).build(&mut out);
    if answer.batches.is_empty() {
        writer.write(&RecordBatch::new_empty(answer.schema.clone()))?;
    }
    for batch in &answer.batches {
        writer.write(&as_text(batch, DataType::is_nested)?)?;
    }
    drop(writer);
    Ok(out)
}

/// The batch with the columns whose type `unwritable` names written as text.
fn as_text(batch: &RecordBatch, unwritable: fn(&DataType) -> bool) -> Result<RecordBatch, QueryError> {
    if !batch.schema().fields().iter().any(|f| unwritable(f.data_type())) {
        return Ok(batch.clone());
    }
    let options = FormatOptions::default();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if unwritable(field.data_type()) {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            let text: StringArray = (0..column.len())
                .map(|i| column.is_valid(i).then(|| formatter.value(i).to_string()))
                .collect();
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(Arc::new(text));
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// A JSON array of row objects, every column in every row (NULL as null).
pub fn json(answer: &Answer) -> Result<Vec<u8>, QueryError> {
    let mut writer = JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for batch in &answer.batches {
        // JSON has lists and objects, but no union (e.g. what json_get returns).
        writer.write(&as_text(batch, |t| matches!(t, DataType::Union(..)))?)?;
    }
    writer.finish()?;
    let out = writer.into_inner();
    Ok(if out.is_empty() { b"[]".to_vec() } else { out })
}

/// An Arrow IPC stream.
pub fn arrow_ipc(answer: &Answer) -> Result<Vec<u8>, QueryError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &answer.schema)?;
    for batch in &answer.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// A Parquet file.
pub fn parquet(answer: &Answer) -> Result<Vec<u8>, QueryError> {
    let mut writer =
        ArrowWriter::try_new(Vec::new(), answer.schema.clone(), None).map_err(|e| QueryError::Engine(e.to_string()))?;
    for batch in &answer.batches {
        writer.write(batch).map_err(|e| QueryError::Engine(e.to_string()))?;
    }
    writer.into_inner().map_err(|e| QueryError::Engine(e.to_string()))
}

fn share(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{:.1} %", v * 100.0))
}

fn number(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v}"))
}

/// An outcome report for a terminal.
pub fn outcomes_table(o: &Outcomes) -> String {
    let mut out = format!(
        "{}: as of {}, known at {}, log position {}\nenrolled: {}\n\nmetric                              n/N       value    95 % interval      target\n",
        o.program,
        o.as_of,
        o.known_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        o.log_position,
        o.enrolled
    );
    for m in &o.metrics {
        out += &metric_line(m);
    }
    for (i, m) in o.metrics.iter().filter(|m| m.description.is_some()).enumerate() {
        if i == 0 {
            out += "\nthe programme's own indicators\n";
        }
        out += &format!("  {}: {}\n", m.metric, m.description.as_deref().unwrap_or_default());
    }
    if let Some(h) = &o.horizon {
        out += &format!(
            "\n{} months after {}: {} not yet due{}\n",
            h.months,
            h.from.as_str(),
            h.not_yet_due,
            if h.censored_exits.is_empty() {
                String::new()
            } else {
                format!(", {} censored ({})", h.censored, h.censored_exits.join(", "))
            }
        );
        for m in &h.metrics {
            out += &metric_line(m);
        }
    }
    out += "\nstatus at the as-of date\n";
    for (group, n) in &o.status_distribution {
        out += &format!("  {group:<12} {n}\n");
    }
    for c in &o.measurement_change {
        out += &format!(
            "\n{}: {} paired, mean {:.2} -> {:.2}; improved {}, unchanged {}, worse {}; composites {:.2} to {:.2}\n",
            c.instrument,
            c.paired,
            c.mean_first.unwrap_or(f64::NAN),
            c.mean_last.unwrap_or(f64::NAN),
            c.improved,
            c.unchanged,
            c.worse,
            c.lowest_composite.unwrap_or(f64::NAN),
            c.highest_composite.unwrap_or(f64::NAN)
        );
    }
    for p in &o.poor_by_wave {
        out += &format!(
            "{} wave {}: poor {}/{} ({})\n",
            p.instrument,
            p.wave,
            p.poor,
            p.measured,
            share(p.value)
        );
    }
    for c in o.compared.iter().flatten() {
        if let Some(d) = &c.difference {
            out += &format!(
                "{:<35} {:+.1} pp vs {} ({}; {:+.1} to {:+.1})\n",
                c.metric,
                d.value * 100.0,
                d.from,
                share(c.other.value),
                d.ci_low * 100.0,
                d.ci_high * 100.0
            );
        }
    }
    for c in o.cohorts.iter().flatten() {
        out += &format!("\ncohort {} ({} enrolled)\n", c.cohort, c.enrolled);
        out += &cohort_lines(&c.metrics);
        if let Some(h) = &c.horizon {
            out += &format!("  at the horizon: {} not yet due, {} censored\n", h.not_yet_due, h.censored);
            out += &cohort_lines(&h.metrics);
        }
    }
    if o.quarterly_employment.is_some() {
        out += "\nquarterly employment (served in the quarter, worked in it; * up to the as-of date)\n";
    }
    for (i, t) in o.on_track.iter().flatten().enumerate() {
        if i == 0 {
            out += "\non track? (the share expected at the programme's end, 95 % interval)\n";
        }
        out += &format!(
            "  {:<35} {} {:.1} %  by {}: {:>7} ({} – {}, {})  {}\n",
            t.metric,
            t.target.op,
            t.target.value * 100.0,
            t.ends_on.map_or("no end date".to_string(), |d| d.to_string()),
            share(t.expected.value),
            share(t.expected.ci_low),
            share(t.expected.ci_high),
            t.expected.basis.as_str(),
            t.verdict.as_str().replace('_', " ")
        );
    }
    for q in o.quarterly_employment.iter().flatten() {
        out += &format!(
            "  {}{} {:>4}/{:<4} {:>7}  {:>7} – {}\n",
            q.quarter,
            if q.partial { "*" } else { " " },
            q.employed,
            q.served,
            share(q.value),
            share(q.ci_low),
            share(q.ci_high)
        );
    }
    out
}

/// A metric's line of the text table.
/// A cohort's share metrics, each with its difference from the first cohort's.
fn cohort_lines(metrics: &[CohortMetric]) -> String {
    let mut out = String::new();
    for m in metrics {
        out += metric_line(&m.share).trim_end();
        if let Some(d) = &m.difference {
            out += &format!(
                "  {:+.1} pp vs {} ({:+.1} to {:+.1})",
                d.value * 100.0,
                d.from,
                d.ci_low * 100.0,
                d.ci_high * 100.0
            );
        }
        out += "\n";
    }
    out
}

fn metric_line(m: &MetricValue) -> String {
    if let Some(error) = &m.error {
        return format!("{:<35} not counted: {error}\n", m.metric);
    }
    let target = match (&m.target, m.met) {
        (Some(t), met) => format!(
            "{} {:.1} % {}",
            t.op,
            t.value * 100.0,
            match met {
                Some(true) => "met",
                Some(false) => "not met",
                None => "",
            }
        ),
        (None, _) => String::new(),
    };
    format!(
        "{:<35} {:>4}/{:<4} {:>7}  {:>7} – {:<7}  {}\n",
        m.metric,
        m.numerator,
        m.denominator,
        share(m.value),
        share(m.ci_low),
        share(m.ci_high),
        target
    )
}

/// A metric's CSV row in `section`.
fn metric_row(section: &str, m: &MetricValue) -> String {
    format!(
        "{section},{},{},{},{},{},{},{},{},{}\n",
        m.metric,
        m.numerator,
        m.denominator,
        number(m.value),
        number(m.ci_low),
        number(m.ci_high),
        m.target.as_ref().map_or("", |t| t.op.as_str()),
        number(m.target.as_ref().map(|t| t.value)),
        m.met.map_or(String::new(), |b| b.to_string())
    )
}

/// An outcome report as CSV, one row per figure: `section, name,
/// numerator, denominator, value, ci_low, ci_high, target_op, target_value, met`.
pub fn outcomes_csv(o: &Outcomes) -> String {
    let mut out = String::from("section,name,numerator,denominator,value,ci_low,ci_high,target_op,target_value,met\n");
    for m in &o.metrics {
        out += &metric_row("metric", m);
    }
    if let Some(h) = &o.horizon {
        // e.g. `horizon_6m_exit`: the metrics at the horizon, and who is
        // left out (numerator: how many).
        let section = format!("horizon_{}m_{}", h.months, h.from.as_str());
        out += &format!("{section},not_yet_due,{},,,,,,,\n", h.not_yet_due);
        out += &format!("{section},censored,{},,,,,,,\n", h.censored);
        for m in &h.metrics {
            out += &metric_row(&section, m);
        }
    }
    for (group, n) in &o.status_distribution {
        out += &format!("status_distribution,{group},{n},{},,,,,,\n", o.enrolled);
    }
    for p in &o.poor_by_wave {
        out += &format!(
            "poor_by_wave,{} wave {},{},{},{},{},{},,,\n",
            p.instrument,
            p.wave,
            p.poor,
            p.measured,
            number(p.value),
            number(p.ci_low),
            number(p.ci_high)
        );
    }
    for c in o.cohorts.iter().flatten() {
        // A cohort's label may hold spaces, never commas.
        for m in &c.metrics {
            out += &metric_row(&format!("cohort {}", c.cohort), &m.share);
        }
        for m in c.horizon.iter().flat_map(|h| &h.metrics) {
            out += &metric_row(&format!("cohort {} at the horizon", c.cohort), &m.share);
        }
    }
    // The verdict stands where the others say whether a target is met.
    for t in o.on_track.iter().flatten() {
        out += &format!(
            "on_track {},{},,,{},{},{},{},{},{}\n",
            t.expected.basis.as_str(),
            t.metric,
            number(t.expected.value),
            number(t.expected.ci_low),
            number(t.expected.ci_high),
            t.target.op,
            t.target.value,
            t.verdict.as_str()
        );
    }
    for q in o.quarterly_employment.iter().flatten() {
        out += &format!(
            "quarterly_employment,{},{},{},{},{},{},,,\n",
            q.quarter,
            q.employed,
            q.served,
            number(q.value),
            number(q.ci_low),
            number(q.ci_high)
        );
    }
    out
}
