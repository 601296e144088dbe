//! The warehouse tables as DataFusion sees them: each directory a listing table with its Hive
//! partitions as columns, registered unfiltered as `warehouse.<table>`; and the reason
//! catalog from `model` as `reason_catalog`.

use std::sync::{Arc, LazyLock};

use arrow::array::{BooleanArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use connaudit_model::{Reason, ReasonKind};
use connaudit_transform::events::ts_type;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use url::Url;

use crate::error::Result;

/// The schema that holds the unfiltered tables; `public` holds views over them.
pub const RAW_SCHEMA: &str = "warehouse";

/// One warehouse table: its name and its time column.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub time: &'static str,
}

pub const TABLES: [Table; 5] = [
    Table { name: "events", time: "ts" },
    Table { name: "connack_reasons", time: "minute" },
    Table { name: "disconnect_reasons", time: "minute" },
    Table { name: "region_failures", time: "minute" },
    Table { name: "alerts", time: "minute" },
];

/// The columns of each table's files, as `connaudit transform` writes them. Declared, not
/// inferred, so a table without files yet still answers (with no rows).
pub fn schema(table: &str) -> SchemaRef {
    static AGGREGATES: LazyLock<[(&str, SchemaRef); 3]> = LazyLock::new(|| {
        let f = |name: &str, t: DataType| Field::new(name, t, true);
        let s = |fields: Vec<Field>| Arc::new(Schema::new(fields));
        [
            (
                "connack_reasons",
                s(vec![
                    f("minute", ts_type()),
                    f("region", DataType::Utf8),
                    f("proto_ver", DataType::Int32),
                    f("reason", DataType::Utf8),
                    f("reason_code", DataType::Int32),
                    f("category", DataType::Utf8),
                    f("is_failure", DataType::Boolean),
                    f("count", DataType::Int64),
                ]),
            ),
            (
                "disconnect_reasons",
                s(vec![
                    f("minute", ts_type()),
                    f("region", DataType::Utf8),
                    f("reason", DataType::Utf8),
                    f("reason_code", DataType::Int32),
                    f("category", DataType::Utf8),
                    f("abnormal", DataType::Boolean),
                    f("count", DataType::Int64),
                ]),
            ),
            (
                "region_failures",
                s(vec![
                    f("minute", ts_type()),
                    f("region", DataType::Utf8),
                    f("connacks", DataType::Int64),
                    f("failed_connacks", DataType::Int64),
                    f("connects", DataType::Int64),
                    f("disconnects", DataType::Int64),
                    f("abnormal_disconnects", DataType::Int64),
                ]),
            ),
        ]
    });
    match table {
        "events" => connaudit_transform::events::schema(),
        "alerts" => connaudit_transform::alerts_schema(),
        other => AGGREGATES.iter().find(|(name, _)| *name == other).map(|(_, s)| s.clone()).unwrap_or_else(|| {
            // Only names from TABLES reach here.
            Arc::new(Schema::empty())
        }),
    }
}

/// Registers every table of the warehouse at `root` (`file:///dir/` or `s3://bucket/prefix/`)
/// as `warehouse.<name>`, with `date` (a DATE) from the paths. Directories of an older
/// layout (`events/date=/hour=/`) are not read.
pub async fn register(ctx: &SessionContext, root: &Url) -> Result<()> {
    let catalog = ctx
        .catalog("datafusion")
        .ok_or_else(|| datafusion::error::DataFusionError::Internal("the default catalog is missing".into()))?;
    catalog.register_schema(RAW_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
    for table in TABLES {
        let partitions = vec![("date".to_string(), DataType::Date32)];
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(partitions);
        let url = root
            .join(&format!("{}/", table.name))
            .map_err(|e| datafusion::error::DataFusionError::Configuration(format!("bad warehouse URL {root}: {e}")))?;
        let config = ListingTableConfig::new(ListingTableUrl::parse(url.as_str())?)
            .with_listing_options(options)
            .with_schema(schema(table.name));
        let provider = ListingTable::try_new(config)?;
        ctx.register_table(format!("{RAW_SCHEMA}.{}", table.name).as_str(), Arc::new(provider))?;
    }
    ctx.register_table("reason_catalog", Arc::new(reason_catalog()?))?;
    Ok(())
}

/// The reason catalog of `model`: what each CONNACK and disconnect reason means and what to do.
fn reason_catalog() -> Result<MemTable> {
    let all = Reason::all();
    let schema = Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("code", DataType::Int32, true),
        Field::new("protocol", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("is_failure", DataType::Boolean, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("aliases", DataType::Utf8, false),
    ]));
    let kind = |r: &Reason| match r.kind {
        ReasonKind::Connack => "connack",
        ReasonKind::Disconnect => "disconnect",
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(all.iter().map(kind))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.name))),
            Arc::new(Int32Array::from_iter(all.iter().map(|r| r.code.map(i32::from)))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.protocol.as_str()))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.category.as_str()))),
            Arc::new(BooleanArray::from_iter(all.iter().map(|r| Some(r.is_failure)))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.action))),
            Arc::new(StringArray::from_iter_values(all.iter().map(|r| r.aliases.join(",")))),
        ],
    )?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}
