//! Snapshot files: `tests/it/snapshots/<name>.txt` holds what the binary must print.
//! `UPDATE_SNAPSHOTS=1` rewrites them; review the diff before committing.

use std::path::PathBuf;

pub fn assert_snapshot(name: &str, actual: &str) {
    let path =
        PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
            .join("tests/it/snapshots")
            .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {}; run with UPDATE_SNAPSHOTS=1 to create it", path.display()));
    if expected != actual {
        panic!(
            "output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}\n(UPDATE_SNAPSHOTS=1 accepts it)",
            path.display()
        );
    }
}
