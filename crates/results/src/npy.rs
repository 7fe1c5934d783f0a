//! NumPy's `.npy` format (version 1.0), for the audit's per-example arrays: what
//! `numpy.load` reads directly. Little-endian, C order; `float32`, `int64` and `int8` only.

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
    i64 => "<i8";
    i8 => "|i1";
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
/// version 1.0, C-order array of `T`).
pub fn from_bytes<T: Element>(bytes: &[u8]) -> Option<(Vec<usize>, Vec<T>)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let len = usize::from(u16::from_le_bytes([*rest.first()?, *rest.get(1)?]));
    let header = std::str::from_utf8(rest.get(2..2 + len)?).ok()?;
    if !header.contains(&format!("'descr': '{}'", T::DESCR))
        || !header.contains("'fortran_order': False")
    {
        return None;
    }
    let dims = header.split("'shape': (").nth(1)?.split(')').next()?;
    let shape: Vec<usize> = dims
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let data = rest.get(2 + len..)?;
    if data.len() != shape.iter().product::<usize>() * T::SIZE {
        return None;
    }
    Some((shape, data.chunks_exact(T::SIZE).map(T::get).collect()))
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
}
