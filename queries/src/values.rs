//! Reading typed values out of query results by column name.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Date32Type, Float64Type, Int64Type};
use chrono::NaiveDate;

use crate::QueryError;

fn column(batches: &[RecordBatch], name: &str, to: &DataType) -> Result<Vec<std::sync::Arc<dyn Array>>, QueryError> {
    batches
        .iter()
        .map(|b| {
            let c = b
                .column_by_name(name)
                .ok_or_else(|| QueryError::Engine(format!("result has no column {name}")))?;
            Ok(cast(c, to)?)
        })
        .collect()
}

pub fn strings(batches: &[RecordBatch], name: &str) -> Result<Vec<Option<String>>, QueryError> {
    Ok(column(batches, name, &DataType::Utf8)?
        .iter()
        .flat_map(|a| {
            a.as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect())
}

pub fn ints(batches: &[RecordBatch], name: &str) -> Result<Vec<Option<i64>>, QueryError> {
    Ok(column(batches, name, &DataType::Int64)?
        .iter()
        .flat_map(|a| a.as_primitive::<Int64Type>().iter().collect::<Vec<_>>())
        .collect())
}

pub fn floats(batches: &[RecordBatch], name: &str) -> Result<Vec<Option<f64>>, QueryError> {
    Ok(column(batches, name, &DataType::Float64)?
        .iter()
        .flat_map(|a| a.as_primitive::<Float64Type>().iter().collect::<Vec<_>>())
        .collect())
}

pub fn bools(batches: &[RecordBatch], name: &str) -> Result<Vec<Option<bool>>, QueryError> {
    Ok(column(batches, name, &DataType::Boolean)?
        .iter()
        .flat_map(|a| a.as_boolean().iter().collect::<Vec<_>>())
        .collect())
}

pub fn dates(batches: &[RecordBatch], name: &str) -> Result<Vec<Option<NaiveDate>>, QueryError> {
    Ok(column(batches, name, &DataType::Date32)?
        .iter()
        .flat_map(|a| {
            let days = a.as_primitive::<Date32Type>();
            (0..days.len())
                .map(|i| days.is_valid(i).then(|| days.value_as_date(i)).flatten())
                .collect::<Vec<_>>()
        })
        .collect())
}
