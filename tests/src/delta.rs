//! Reading a Delta table the way an outside engine does, independently of delta-rs: the log
//! (`_last_checkpoint`, the checkpoint's Parquet, then each JSON commit after it) parsed in
//! Python, and DuckDB reading exactly the data files the log lists.

use std::path::Path;

use anyhow::Result;

use crate::duck::python_json;

const FILES: &str = r#"
import json, os, sys, urllib.parse
import pyarrow.fs as pafs, pyarrow.parquet as pq
root = sys.argv[1]
if root.startswith("s3://"):
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    fs = pafs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                           region=os.environ.get("AWS_REGION", "us-east-1"), scheme=endpoint.split("://")[0],
                           endpoint_override=endpoint.split("://")[1])
    root = root[len("s3://"):].rstrip("/")
else:
    fs = pafs.LocalFileSystem()
log = root + "/_delta_log"
names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(log, allow_not_found=True))]
files, start = {}, -1
if "_last_checkpoint" in names:
    with fs.open_input_stream(log + "/_last_checkpoint") as f:
        start = json.loads(f.read())["version"]
    for part in sorted(n for n in names if n.startswith("%020d.checkpoint" % start) and n.endswith(".parquet")):
        for add in pq.read_table(log + "/" + part, columns=["add"], filesystem=fs).column("add").to_pylist():
            if add:
                files[add["path"]] = add
commits = sorted(int(n[:20]) for n in names if len(n) == 25 and n.endswith(".json") and n[:20].isdigit())
for version in (v for v in commits if v > start):
    with fs.open_input_stream(log + "/%020d.json" % version) as f:
        for line in f.read().decode().splitlines():
            action = json.loads(line)
            if "add" in action:
                files[action["add"]["path"]] = action["add"]
            elif "remove" in action:
                files.pop(action["remove"]["path"], None)
print(json.dumps(sorted(root + "/" + urllib.parse.unquote(p) for p in files)))
"#;

/// The data files of the Delta table at `dir` that its latest version lists.
pub fn delta_files(dir: &Path) -> Result<Vec<String>> {
    delta_files_at(&dir.display().to_string())
}

/// The same for a table at a directory or `s3://bucket/prefix/table` (the `AWS_*` variables
/// say where S3 is); S3 paths come back as `bucket/key`.
pub fn delta_files_at(location: &str) -> Result<Vec<String>> {
    Ok(serde_json::from_value(python_json(FILES, &[location])?)?)
}

/// A DuckDB table expression over exactly the files the log lists, with `date` from their
/// partition directories; a table without files reads as no rows.
pub fn delta_table(dir: &Path) -> Result<String> {
    if !dir.join("_delta_log").exists() {
        return Ok("(SELECT NULL AS nothing WHERE false)".into());
    }
    let files = delta_files(dir)?;
    if files.is_empty() {
        return Ok("(SELECT NULL AS nothing WHERE false)".into());
    }
    let list: Vec<String> = files.iter().map(|f| format!("'{f}'")).collect();
    Ok(format!("read_parquet([{}], hive_partitioning = true)", list.join(", ")))
}
