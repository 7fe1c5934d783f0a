//! Writing and reading a CSV file through its row type.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `rows` as CSV bytes, with the header even when there is no row.
pub fn to_csv<T: Serialize + Default>(rows: &[T]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // The header is the field names, written before the first row: take it from a
        // default row's output.
        w.serialize(T::default())?;
        let bytes = w.into_inner()?;
        let header = bytes.split_inclusive(|&b| b == b'\n').next().unwrap_or_default();
        return Ok(header.to_vec());
    }
    for row in rows {
        w.serialize(row)?;
    }
    Ok(w.into_inner()?)
}

/// The header `T` writes, as field names.
pub fn header<T: Serialize + Default>() -> Vec<String> {
    let bytes = to_csv::<T>(&[]).expect("a header serialises");
    let line = String::from_utf8(bytes).expect("ASCII field names");
    line.trim_end().split(',').map(str::to_owned).collect()
}

/// Every row of the CSV file at `path`, checked against `T`'s columns; errors name the file
/// and the row.
pub fn read<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{}: malformed row {}", path.display(), i + 2)))
        .collect()
}
