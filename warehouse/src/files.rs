//! How data files are encoded: zstd, page statistics, and for `events` rows in the table's sort
//! order (type, client, time) with a bloom filter on `clientid`, so a read of one type, or of one
//! client's history, skips the other pages.
//! Each column gets the encoding its values suit: times and offsets, which rise within a
//! client, as deltas; near-unique strings and hashes plain; the rest as a dictionary.

use arrow::array::{Array, AsArray, RecordBatch};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;

use crate::tables::Table;

/// Row groups of up to a million rows: large enough for scans, and statistics per page
/// still let a reader skip inside them.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// Rows per data page in the files the transformer writes with a bloom filter column.
const PAGE_ROWS: usize = 1024;

/// Rows per data page in a compacted day: every page costs each column a header and an entry
/// in both page indexes, about 2 bytes per event at 1,024 rows; a lookup of one client still
/// decodes only a page per event type and column of a day's file.
const COMPACTED_PAGE_ROWS: usize = 8192;

/// Columns with nearly one value per row: a dictionary would only add indices to the plain
/// values (measured: 750 KB -> 434 KB for an hour of 30000 events without them).
const HIGH_CARDINALITY: [&str; 4] = ["clientid", "username", "peer_ip", "fingerprint"];

/// Strings in the table's order (the client id, and the user name that mostly follows it): each
/// shares a prefix with the one before, so stored as prefix lengths and suffixes
/// (`DELTA_BYTE_ARRAY`, which DuckDB, Spark 3.3+, Trino and arrow read). A day of the
/// benchmark's events compacted (ids like `dev-01234`): `clientid` and `username` 0.58 -> 0.12
/// bytes per event each. Other shapes, 333,333 sorted rows of 100,000 ids (pyarrow, zstd 3):
/// MAC addresses 3.00 -> 2.83, UUIDs 6.15 -> 6.16, `thing-` and 12 random letters 2.45 -> 2.90.
const PREFIXED: [&str; 2] = ["clientid", "username"];

/// Times and offsets: nearly one value per row, rising within a client (and a partition), so
/// stored as deltas (`DELTA_BINARY_PACKED`, which every Parquet reader of Delta reads). On 300,000
/// fleet events compacted: `ts` 2.2 -> 0.02 bytes per event, the four together 4.5 -> 0.07.
const DELTAS: [&str; 6] = ["ts", "connected_at", "disconnected_at", "ended_at", "kafka_offset", "connect_offset"];

/// Which writer a file comes from: a batch of the transformer, or compaction merging a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Batch,
    Compacted,
}

fn base() -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).expect("zstd level 3 exists")))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(concat!("connaudit ", env!("CARGO_PKG_VERSION")).to_string())
}

/// Properties for a file of `table` written by a transformer's batch (see [`properties`]).
pub fn writer_properties(table: &Table, distinct: u64) -> WriterProperties {
    properties(table, distinct, Layout::Batch)
}

/// Properties for a file of `table` whose rows are in the table's sort order; `distinct` is
/// the number of distinct values of its bloom filter column.
pub fn properties(table: &Table, distinct: u64, layout: Layout) -> WriterProperties {
    let Some(bloom) = table.bloom else { return base().build() };
    let schema = table.file_schema();
    let mut props = base();
    for column in HIGH_CARDINALITY.iter().filter(|c| schema.field_with_name(c).is_ok()) {
        props = props.set_column_dictionary_enabled(ColumnPath::from(*column), false);
    }
    for column in PREFIXED.iter().filter(|c| schema.field_with_name(c).is_ok()) {
        props = props.set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BYTE_ARRAY);
    }
    for column in DELTAS.iter().filter(|c| schema.field_with_name(c).is_ok()) {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(*column), false)
            .set_column_encoding(ColumnPath::from(*column), Encoding::DELTA_BINARY_PACKED);
    }
    let page_rows = if layout == Layout::Compacted { COMPACTED_PAGE_ROWS } else { PAGE_ROWS };
    let sorting = table
        .sort
        .iter()
        .take(2)
        .filter_map(|c| schema.index_of(c).ok())
        .map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false })
        .collect();
    let column = ColumnPath::from(bloom);
    props
        .set_column_bloom_filter_enabled(column.clone(), true)
        .set_column_bloom_filter_fpp(column.clone(), 0.01)
        .set_column_bloom_filter_max_ndv(column, distinct.max(1))
        // Small pages: with rows sorted by the bloom column, the page index lets a reader of
        // one value decode a page per file instead of the whole row group.
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows)
        .set_sorting_columns(Some(sorting))
        .build()
}

/// Distinct values of a string column (the bloom filter's size): a set, since in the table's
/// order a value can come back (a client's rows are in one run per event type). A value equal
/// to the one before it (a client's rows side by side) is not hashed again, and the set hashes
/// with foldhash, seeded per process (SipHash's cost bought nothing here: it was 450 of 51,000
/// instructions per event under callgrind).
pub fn distinct_values(batches: &[RecordBatch], column: &str) -> u64 {
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let mut seen: foldhash::HashSet<&str> = foldhash::HashSet::with_capacity_and_hasher(rows, Default::default());
    for b in batches {
        let Some(values) = b.column_by_name(column) else { continue };
        match values.data_type() {
            arrow::datatypes::DataType::Utf8 => add_runs(&mut seen, values.as_string::<i32>().iter()),
            arrow::datatypes::DataType::Utf8View => add_runs(&mut seen, values.as_string_view().iter()),
            _ => return values.len() as u64,
        }
    }
    seen.len() as u64
}

/// Adds each run of equal values once.
fn add_runs<'a>(seen: &mut foldhash::HashSet<&'a str>, values: impl Iterator<Item = Option<&'a str>>) {
    let mut last = None;
    for v in values.flatten() {
        if last != Some(v) {
            seen.insert(v);
            last = Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray, StringViewArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(ids: Vec<Option<&str>>, view: bool) -> RecordBatch {
        let (column, kind): (Arc<dyn Array>, _) = if view {
            (Arc::new(StringViewArray::from(ids)), DataType::Utf8View)
        } else {
            (Arc::new(StringArray::from(ids)), DataType::Utf8)
        };
        let schema = Schema::new(vec![Field::new("clientid", kind, true)]);
        RecordBatch::try_new(Arc::new(schema), vec![column]).unwrap()
    }

    #[test]
    fn distinct_values_counts_a_value_back_after_a_run_once() {
        // A client's rows in one run per event type: `a` comes back after `b`, and in the next batch.
        let first = batch(vec![Some("a"), Some("a"), Some("b"), None, Some("a"), Some("c")], false);
        let second = batch(vec![Some("c"), Some("d"), Some("a")], true);
        assert_eq!(distinct_values(&[first.clone()], "clientid"), 3);
        assert_eq!(distinct_values(&[first, second], "clientid"), 4);
    }

    #[test]
    fn distinct_values_of_a_column_not_of_strings_is_its_length() {
        let schema = Schema::new(vec![Field::new("n", DataType::Int64, false)]);
        let b = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(Int64Array::from(vec![1, 1, 2]))]).unwrap();
        assert_eq!(distinct_values(&[b], "n"), 3);
    }
}
