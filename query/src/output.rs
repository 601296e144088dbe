//! Writing a result: an aligned table, CSV, JSON, NDJSON or Parquet, to stdout or a file.
//! Everything but the table streams, so a large result never sits in memory.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::args::Format;
use crate::error::{Error, Result};

/// Where results go.
#[derive(Debug, Clone)]
pub struct Output {
    pub format: Format,
    pub path: Option<PathBuf>,
}

impl Output {
    /// The format asked for, or a table on a terminal and CSV otherwise.
    pub fn new(format: Option<Format>, path: Option<PathBuf>) -> Result<Self> {
        let format = format.unwrap_or_else(|| match (&path, std::io::stdout().is_terminal()) {
            (None, true) => Format::Table,
            _ => Format::Csv,
        });
        if format == Format::Parquet && path.is_none() {
            return Err(Error::Usage("--format parquet writes a file: add -o FILE.parquet".into()));
        }
        Ok(Output { format, path })
    }

    /// Writes the whole stream; returns the number of rows.
    pub async fn write(&self, mut stream: SendableRecordBatchStream) -> Result<u64> {
        let schema = stream.schema();
        let sink: Box<dyn Write + Send> = match &self.path {
            Some(path) => Box::new(BufWriter::new(create(path)?)),
            None => Box::new(BufWriter::new(std::io::stdout())),
        };
        let mut writer = Writer::new(self.format, schema.clone(), sink)?;
        let mut rows = 0;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            writer.write(batch)?;
        }
        writer.finish(&schema)?;
        Ok(rows)
    }
}

fn create(path: &Path) -> Result<File> {
    File::create(path).map_err(|source| Error::File { path: path.display().to_string(), source })
}

enum Writer {
    Table(Box<dyn Write + Send>, Vec<RecordBatch>),
    Csv(arrow::csv::Writer<Box<dyn Write + Send>>, bool),
    Json(arrow::json::ArrayWriter<Box<dyn Write + Send>>),
    Ndjson(arrow::json::LineDelimitedWriter<Box<dyn Write + Send>>),
    Parquet(ArrowWriter<Box<dyn Write + Send>>),
}

impl Writer {
    fn new(format: Format, schema: SchemaRef, sink: Box<dyn Write + Send>) -> Result<Self> {
        Ok(match format {
            Format::Table => Writer::Table(sink, Vec::new()),
            Format::Csv => Writer::Csv(arrow::csv::WriterBuilder::new().with_header(true).build(sink), false),
            Format::Json => Writer::Json(arrow::json::ArrayWriter::new(sink)),
            Format::Ndjson => Writer::Ndjson(arrow::json::LineDelimitedWriter::new(sink)),
            Format::Parquet => {
                let props =
                    WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?)).build();
                Writer::Parquet(ArrowWriter::try_new(sink, schema, Some(props))?)
            }
        })
    }

    fn write(&mut self, batch: RecordBatch) -> Result<()> {
        match self {
            Writer::Table(_, batches) => batches.push(batch),
            Writer::Csv(w, wrote) => {
                w.write(&batch)?;
                *wrote = true;
            }
            Writer::Json(w) => w.write(&batch)?,
            Writer::Ndjson(w) => w.write(&batch)?,
            Writer::Parquet(w) => w.write(&batch)?,
        }
        Ok(())
    }

    fn finish(self, schema: &SchemaRef) -> Result<()> {
        let mut sink = match self {
            Writer::Table(mut sink, batches) => {
                // Shares and rates as people read them; the other formats keep full precision.
                let schema = percent_schema(schema);
                let batches = batches.iter().map(|b| percents(b, &schema)).collect::<Result<Vec<_>>>()?;
                let table = arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
                writeln!(sink, "{table}").map_err(Error::Output)?;
                sink
            }
            Writer::Csv(mut w, wrote) => {
                if !wrote {
                    // The header alone, so an empty result still names its columns.
                    w.write(&RecordBatch::new_empty(schema.clone()))?;
                }
                w.into_inner()
            }
            Writer::Json(mut w) => {
                w.finish()?;
                let mut sink = w.into_inner();
                writeln!(sink).map_err(Error::Output)?;
                sink
            }
            Writer::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner()
            }
            Writer::Parquet(w) => w.into_inner()?,
        };
        sink.flush().map_err(Error::Output)
    }
}

/// A fraction column by its name: `share`, `rate` or `..._share`/`..._rate`.
fn is_fraction(field: &arrow::datatypes::Field) -> bool {
    let name = field.name();
    let named = name == "share" || name == "rate" || name.ends_with("_share") || name.ends_with("_rate");
    named && matches!(field.data_type(), arrow::datatypes::DataType::Float64 | arrow::datatypes::DataType::Float32)
}

/// `0.2341` as `23.4 %`; nothing for a missing or undefined (0/0) fraction.
fn percent(value: Option<f64>) -> Option<String> {
    value.filter(|v| v.is_finite()).map(|v| format!("{:.1} %", v * 100.0))
}

/// The schema with fraction columns as text.
fn percent_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| match is_fraction(f) {
            true => arrow::datatypes::Field::new(f.name(), arrow::datatypes::DataType::Utf8, true),
            false => f.as_ref().clone(),
        })
        .collect();
    std::sync::Arc::new(arrow::datatypes::Schema::new(fields))
}

/// Fractions as percentages with one decimal (`0.2341` -> `23.4 %`).
fn percents(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    use arrow::array::{Array, AsArray, StringArray};
    let columns = batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(column, field)| -> Result<arrow::array::ArrayRef> {
            if !is_fraction(field) {
                return Ok(column.clone());
            }
            let values = arrow::compute::cast(column, &arrow::datatypes::DataType::Float64)?;
            let values = values.as_primitive::<arrow::datatypes::Float64Type>();
            let text: StringArray =
                (0..values.len()).map(|i| percent(values.is_valid(i).then(|| values.value(i)))).collect();
            Ok(std::sync::Arc::new(text))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_read_as_percentages_in_a_table() {
        use arrow::datatypes::{DataType, Field, Schema};
        let schema: SchemaRef = std::sync::Arc::new(Schema::new(vec![
            Field::new("reason", DataType::Utf8, false),
            Field::new("share", DataType::Float64, true),
            Field::new("count", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(arrow::array::StringArray::from(vec!["a", "b"])),
                std::sync::Arc::new(arrow::array::Float64Array::from(vec![Some(0.23410596026490066), None])),
                std::sync::Arc::new(arrow::array::Int64Array::from(vec![7, 9])),
            ],
        )
        .unwrap();
        let people = percent_schema(&schema);
        let out = percents(&batch, &people).unwrap();
        let text = arrow::util::pretty::pretty_format_batches(&[out]).unwrap().to_string();
        assert!(text.contains("23.4 %") && !text.contains("0.234"), "{text}");
    }
}
