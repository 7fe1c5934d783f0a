//! The IDX format of MNIST-like datasets, read strictly.
//!
//! A file is a big-endian header followed by raw `u8` data:
//!
//! | file   | magic | dimensions (u32 each)      | data                         |
//! |--------|-------|----------------------------|------------------------------|
//! | images | 2051  | count, rows, columns       | count * rows * columns bytes |
//! | labels | 2049  | count                      | count bytes, each < classes  |
//!
//! Files may be gzip-compressed (detected by their first two bytes, not their name). Anything
//! else (a wrong magic number, a header or data cut short, bytes past the end, an out-of-range
//! label) is an error that says what is wrong.

use std::io::Read;
use std::path::Path;

use crate::DataError;

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;

/// Images as stored: `count` row-major `rows x cols` images of `u8` pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads a whole file, decompressing it if it is gzip.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io { path: path.to_owned(), source };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| {
            DataError::Format {
                path: path.to_owned(),
                problem: format!("corrupt gzip stream: {e}"),
            }
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Reads and validates an image file.
pub fn read_images(path: &Path) -> Result<Images, DataError> {
    parse_images(&read_bytes(path)?)
        .map_err(|problem| DataError::Format { path: path.to_owned(), problem })
}

/// Reads and validates a label file whose labels must be below `classes`.
pub fn read_labels(path: &Path, classes: u8) -> Result<Vec<u8>, DataError> {
    parse_labels(&read_bytes(path)?, classes)
        .map_err(|problem| DataError::Format { path: path.to_owned(), problem })
}

/// Parses the bytes of an (uncompressed) image file.
pub fn parse_images(bytes: &[u8]) -> Result<Images, String> {
    let dims = header(bytes, IMAGES_MAGIC, 3, "images")?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let data = &bytes[16..];
    let expected = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| format!("dimensions {count} x {rows} x {cols} overflow"))?;
    check_len(data.len(), expected, "pixel")?;
    Ok(Images { count, rows, cols, pixels: data.to_vec() })
}

/// Parses the bytes of an (uncompressed) label file.
pub fn parse_labels(bytes: &[u8], classes: u8) -> Result<Vec<u8>, String> {
    let count = header(bytes, LABELS_MAGIC, 1, "labels")?[0];
    let data = &bytes[8..];
    check_len(data.len(), count, "label")?;
    if let Some(i) = data.iter().position(|&l| l >= classes) {
        return Err(format!(
            "label {} at index {i} is out of range (expected 0..{})",
            data[i],
            classes - 1
        ));
    }
    Ok(data.to_vec())
}

fn header(bytes: &[u8], magic: u32, ndims: usize, kind: &str) -> Result<Vec<usize>, String> {
    let header_len = 4 + 4 * ndims;
    if bytes.len() < header_len {
        return Err(format!(
            "file is {} bytes, shorter than the {header_len}-byte {kind} header (truncated?)",
            bytes.len()
        ));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
    let found = word(0);
    if found != magic {
        let hint = match found {
            IMAGES_MAGIC => " (this is an images file)",
            LABELS_MAGIC => " (this is a labels file)",
            _ => "",
        };
        return Err(format!("magic number {found}, expected {magic} for {kind}{hint}"));
    }
    Ok((1..=ndims).map(|i| word(i) as usize).collect())
}

fn check_len(found: usize, expected: usize, what: &str) -> Result<(), String> {
    match found.cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => {
            Err(format!("truncated: {found} {what} bytes after the header, expected {expected}"))
        }
        std::cmp::Ordering::Greater => Err(format!(
            "oversized: {found} {what} bytes after the header, expected {expected} ({} extra)",
            found - expected
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn images_bytes(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [IMAGES_MAGIC, count, rows, cols] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(pixels);
        b
    }

    pub(crate) fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [LABELS_MAGIC, labels.len() as u32] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(labels);
        b
    }

    #[track_caller]
    fn check_err(result: Result<impl std::fmt::Debug, String>, expected: &str) {
        let err = result.expect_err("expected an error");
        assert!(err.contains(expected), "error {err:?} lacks {expected:?}");
    }

    #[test]
    fn parses_valid_files() {
        let images =
            parse_images(&images_bytes(2, 2, 3, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255])).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (2, 2, 3));
        assert_eq!(images.pixels[11], 255);
        assert_eq!(parse_labels(&labels_bytes(&[0, 9, 3]), 10).unwrap(), vec![0, 9, 3]);
        assert!(parse_labels(&labels_bytes(&[]), 10).unwrap().is_empty());
    }

    #[test]
    fn rejects_corrupt_files() {
        let valid = images_bytes(2, 2, 2, &[1; 8]);
        check_err(parse_images(&valid[..valid.len() - 1]), "truncated: 7 pixel bytes");
        check_err(parse_images(&[valid.clone(), vec![0]].concat()), "oversized: 9 pixel");
        check_err(parse_images(&valid[..10]), "shorter than the 16-byte images header");
        check_err(
            parse_images(&labels_bytes(&[1; 12])),
            "magic number 2049, expected 2051 for images (this is a labels file)",
        );
        let mut bad_magic = valid.clone();
        bad_magic[3] = 0x07;
        check_err(parse_images(&bad_magic), "magic number 2055");
        check_err(parse_labels(&labels_bytes(&[1, 10, 2]), 10), "label 10 at index 1");
        check_err(parse_labels(&labels_bytes(&[1, 2])[..9], 10), "truncated: 1 label");
        check_err(parse_labels(&valid, 10), "expected 2049 for labels (this is an images file)");
        check_err(
            parse_images(&images_bytes(u32::MAX, u32::MAX, u32::MAX, &[])),
            if usize::BITS > 64 { "truncated" } else { "overflow" },
        );
    }

    #[test]
    fn reads_gzip_and_names_the_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&labels_bytes(&[4, 2])).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(read_labels(&path, 10).unwrap(), vec![4, 2]);

        let bad = dir.path().join("bad-labels");
        std::fs::write(&bad, labels_bytes(&[11])).unwrap();
        let msg = read_labels(&bad, 10).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!("{}: invalid IDX file: label 11", bad.display())),
            "{msg}"
        );

        let corrupt = dir.path().join("corrupt.gz");
        std::fs::write(&corrupt, [0x1f, 0x8b, 0, 1, 2]).unwrap();
        let msg = read_labels(&corrupt, 10).unwrap_err().to_string();
        assert!(msg.contains("corrupt gzip stream"), "{msg}");
    }
}
