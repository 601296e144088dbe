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
                let table = arrow::util::pretty::pretty_format_batches_with_schema(schema.clone(), &batches)?;
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
