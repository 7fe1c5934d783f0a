//! NumPy's `.npy` format, for the audit's per-example arrays: what `numpy.load` reads
//! directly. Writes version 1.0; reads versions 1.0 to 3.0. Little-endian, C order;
//! `float16` (U-LiRA's committed scores), `float32`, `float64`, `int64`,
//! `int32`, `int16`, `int8` and `uint8`.

/// An array's element type, as `.npy` names it.
pub trait Element: Copy {
    const DESCR: &'static str;
    const SIZE: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! elements {
    ($($t:ty => $descr:literal;)*) => {$(
        impl Element for $t {
            const DESCR: &'static str = $descr;
            const SIZE: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(b: &[u8]) -> Self {
                <$t>::from_le_bytes(b.try_into().expect("one element's bytes"))
            }
        }
    )*};
}

elements! {
    f32 => "<f4";
    f64 => "<f8";
    i64 => "<i8";
    i32 => "<i4";
    i16 => "<i2";
    i8 => "|i1";
    u8 => "|u1";
}

impl Element for half::f16 {
    const DESCR: &'static str = "<f2";
    const SIZE: usize = 2;
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        half::f16::from_le_bytes(b.try_into().expect("one element's bytes"))
    }
}

const MAGIC: &[u8] = b"\x93NUMPY\x01\x00";

/// The `.npy` bytes of an array of `shape` (row-major `values`).
///
/// # Panics
/// If `values` does not have `shape`'s number of elements (a caller bug).
pub fn to_bytes<T: Element>(shape: &[usize], values: &[T]) -> Vec<u8> {
    assert_eq!(shape.iter().product::<usize>(), values.len(), "shape {shape:?}");
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let dims = if dims.len() == 1 { format!("{},", dims[0]) } else { dims.join(", ") };
    let mut header =
        format!("{{'descr': '{}', 'fortran_order': False, 'shape': ({dims}), }}", T::DESCR);
    // Magic, two length bytes, the header and its newline: a multiple of 64 bytes.
    let unpadded = MAGIC.len() + 2 + header.len() + 1;
    header += &" ".repeat(unpadded.next_multiple_of(64) - unpadded);
    header.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + header.len() + values.len() * T::SIZE);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for &v in values {
        v.put(&mut out);
    }
    out
}

/// Reads what [`to_bytes`] writes: the shape and the values (`None` if `bytes` is not a
/// C-order array of `T`).
pub fn from_bytes<T: Element>(bytes: &[u8]) -> Option<(Vec<usize>, Vec<T>)> {
    let array = read(bytes).ok()?;
    (array.descr == T::DESCR).then(|| (array.shape.clone(), array.values::<T>()))
}

/// An array read from `.npy` bytes, of any element type this module knows.
#[derive(Debug, Clone)]
pub struct Array<'a> {
    pub shape: Vec<usize>,
    /// numpy's name of the element type, e.g. `<f4`.
    pub descr: String,
    data: &'a [u8],
}

impl Array<'_> {
    /// The elements as `T` (the caller has checked `descr`).
    fn values<T: Element>(&self) -> Vec<T> {
        self.data.chunks_exact(T::SIZE).map(T::get).collect()
    }

    /// The elements as `f64`, from any float type (`None` for another type).
    pub fn floats(&self) -> Option<Vec<f64>> {
        match self.descr.as_str() {
            "<f4" => Some(self.values::<f32>().into_iter().map(f64::from).collect()),
            "<f8" => Some(self.values::<f64>()),
            "<f2" => Some(self.values::<half::f16>().into_iter().map(f64::from).collect()),
            _ => None,
        }
    }

    /// The elements as `i64`, from any integer type (`None` for another type).
    pub fn integers(&self) -> Option<Vec<i64>> {
        match self.descr.as_str() {
            "<i8" => Some(self.values::<i64>()),
            "<i4" => Some(self.values::<i32>().into_iter().map(i64::from).collect()),
            "<i2" => Some(self.values::<i16>().into_iter().map(i64::from).collect()),
            "|i1" => Some(self.values::<i8>().into_iter().map(i64::from).collect()),
            "|u1" => Some(self.values::<u8>().into_iter().map(i64::from).collect()),
            _ => None,
        }
    }
}

/// Parses `.npy` bytes, or says what is wrong with them.
pub fn read(bytes: &[u8]) -> Result<Array<'_>, String> {
    let rest = bytes.strip_prefix(b"\x93NUMPY".as_slice()).ok_or("not a .npy file")?;
    let (header, data) = match rest {
        [1, 0, a, b, rest @ ..] => rest.split_at_checked(usize::from(u16::from_le_bytes([*a, *b]))),
        [2 | 3, 0, a, b, c, d, rest @ ..] => {
            rest.split_at_checked(u32::from_le_bytes([*a, *b, *c, *d]) as usize)
        }
        _ => return Err("an unknown .npy version".into()),
    }
    .ok_or("a truncated .npy header")?;
    let header = std::str::from_utf8(header).map_err(|_| "a .npy header that is not text")?;
    if !header.contains("'fortran_order': False") {
        return Err("a Fortran-order array (save it in C order: np.ascontiguousarray)".into());
    }
    let field = |name: &str, open: char, close: char| -> Result<&str, String> {
        let start = header.find(&format!("'{name}': {open}")).ok_or(format!("no '{name}'"))?;
        let value = &header[start + name.len() + 5..];
        Ok(&value[..value.find(close).ok_or(format!("a malformed '{name}'"))?])
    };
    let descr = field("descr", '\'', '\'')?.to_string();
    let size = match descr.as_str() {
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        "<f2" | "<i2" => 2,
        "|i1" | "|u1" => 1,
        other => {
            return Err(format!(
                "elements of type '{other}' (float16, float32, float64, int64, int32, int16, int8 or uint8, little-endian, are read)"
            ));
        }
    };
    let shape: Vec<usize> = field("shape", '(', ')')?
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| "a malformed shape")?;
    let expected = shape.iter().product::<usize>() * size;
    if data.len() != expected {
        return Err(format!(
            "{} bytes of data where shape {shape:?} of '{descr}' needs {expected}",
            data.len()
        ));
    }
    Ok(Array { shape, descr, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_numpy_headers_and_reads_them_back() {
        let bytes = to_bytes(&[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, -6.5]);
        // The header numpy itself writes for np.zeros((2, 3), np.float32).
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 118);
        assert_eq!(&bytes[10..10 + header.len()], header.as_bytes());
        assert_eq!(bytes[127], b'\n');
        assert_eq!(bytes.len(), 128 + 6 * 4);
        assert_eq!(
            from_bytes::<f32>(&bytes).unwrap(),
            (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5])
        );
        assert!(from_bytes::<i64>(&bytes).is_none(), "another dtype");

        let one = to_bytes(&[3], &[7i64, -1, 1 << 40]);
        assert!(std::str::from_utf8(&one[10..128]).unwrap().contains("'shape': (3,), }"));
        assert_eq!(from_bytes::<i64>(&one).unwrap(), (vec![3], vec![7, -1, 1 << 40]));
        assert!(from_bytes::<i64>(&one[..one.len() - 1]).is_none(), "truncated");
    }

    #[test]
    fn reads_any_known_type_and_names_what_it_cannot() {
        let f64s = to_bytes(&[2], &[0.5f64, -2.0]);
        assert_eq!(read(&f64s).unwrap().floats().unwrap(), vec![0.5, -2.0]);
        assert!(read(&f64s).unwrap().integers().is_none());
        let u8s = to_bytes(&[3], &[0u8, 7, 255]);
        assert_eq!(read(&u8s).unwrap().integers().unwrap(), vec![0, 7, 255]);
        let i16s = to_bytes(&[2], &[-300i16, 32767]);
        assert_eq!(read(&i16s).unwrap().integers().unwrap(), vec![-300, 32767]);
        // float16: three significant digits (1/3 rounds to 0.33325).
        let f16s = to_bytes(&[3], &[0.5f32, -2.0, 1.0 / 3.0].map(half::f16::from_f32));
        assert_eq!(&f16s[10..30], b"{'descr': '<f2', 'fo");
        assert_eq!(read(&f16s).unwrap().floats().unwrap(), vec![0.5, -2.0, 0.333251953125]);
        // Version 2.0: a four-byte header length.
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n";
        v2.extend_from_slice(&(header.len() as u32).to_le_bytes());
        v2.extend_from_slice(header.as_bytes());
        v2.extend_from_slice(&[1, 0, 0, 0, 255, 255, 255, 255]);
        assert_eq!(read(&v2).unwrap().integers().unwrap(), vec![1, -1]);
        let error = |bytes: &[u8]| read(bytes).unwrap_err();
        assert!(error(b"PK\x03\x04").contains("not a .npy"));
        assert!(error(&f64s[..f64s.len() - 1]).contains("15 bytes of data where shape [2]"));
        let edited = |bytes: &[u8], from: &[u8], to: &[u8]| {
            let at = bytes.windows(from.len()).position(|w| w == from).unwrap();
            [&bytes[..at], to, &bytes[at + from.len()..]].concat()
        };
        assert!(error(&edited(&f64s, b"<f8", b">f8")).contains("'>f8'"));
        assert!(error(&edited(&u8s, b"False", b"True ")).contains("Fortran"));
    }
}
