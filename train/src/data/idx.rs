//! Reading IDX files, the format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! An IDX file is a big-endian `u32` magic number (`0x0000_08NN`: unsigned bytes, `NN`
//! dimensions), one big-endian `u32` per dimension, then the product of the dimensions in bytes.
//! Compression is detected from the gzip magic bytes, not from the file name.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// Magic number of an image file (`idx3-ubyte`: unsigned bytes, three dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of a label file (`idx1-ubyte`: unsigned bytes, one dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The largest payload a header may claim (2^31 bytes); larger claims are rejected before
/// anything is allocated.
pub const MAX_PAYLOAD: u64 = 1 << 31;

/// The initial buffer size for a payload; the buffer grows with the data actually read, so a
/// lying header cannot make the reader allocate more than the file holds.
const INITIAL_CAPACITY: u64 = 1 << 26;

/// The contents of an IDX image file: `count` images of `rows x cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `count * rows * cols` pixels.
    pub pixels: Vec<u8>,
}

/// Reads an `idx3-ubyte` image file (raw or gzip-compressed).
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    let mut reader = open(path)?;
    let dims = read_header(&mut reader, path, IMAGES_MAGIC, "images (idx3-ubyte)", 3)?;
    let [count, rows, cols] = [dims[0], dims[1], dims[2]];
    let dims_text = format!("{count} x {rows} x {cols}");
    for (value, what) in [(count, "count"), (rows, "rows"), (cols, "cols")] {
        if value == 0 {
            return Err(DataError::ZeroSize { path: path.to_path_buf(), what, dims: dims_text });
        }
    }
    let bytes = u64::from(count) * u64::from(rows) * u64::from(cols);
    let pixels = read_payload(&mut reader, path, bytes)?;
    Ok(IdxImages { count: to_usize(count), rows: to_usize(rows), cols: to_usize(cols), pixels })
}

/// Reads an `idx1-ubyte` label file (raw or gzip-compressed).
pub fn read_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let mut reader = open(path)?;
    let dims = read_header(&mut reader, path, LABELS_MAGIC, "labels (idx1-ubyte)", 1)?;
    if dims[0] == 0 {
        return Err(DataError::ZeroSize { path: path.to_path_buf(), what: "count", dims: "0".to_string() });
    }
    read_payload(&mut reader, path, u64::from(dims[0]))
}

/// Opens `path`, transparently gunzipping it when it starts with the gzip magic bytes.
fn open(path: &Path) -> Result<Box<dyn Read>, DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            let expected = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            DataError::MissingFile { path: path.to_path_buf(), expected, dir, hint: String::new() }
        } else {
            io(source)
        }
    })?;
    let mut reader = BufReader::new(file);
    let gzip = reader.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(MultiGzDecoder::new(reader)) } else { Box::new(reader) })
}

/// Reads and checks the magic number and the `ndims` dimensions.
fn read_header(
    reader: &mut dyn Read,
    path: &Path,
    magic: u32,
    what: &'static str,
    ndims: usize,
) -> Result<Vec<u32>, DataError> {
    let mut header = vec![0u8; 4 * (ndims + 1)];
    let got = read_full(reader, &mut header, path)?;
    let words: Vec<u32> = header.chunks_exact(4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]])).collect();
    // A wrong magic number is the more useful report even when the header is also short.
    if got >= 4 && words[0] != magic {
        return Err(DataError::BadMagic { path: path.to_path_buf(), found: words[0], expected: magic, what });
    }
    if got < header.len() {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            part: "header",
            expected: header.len() as u64,
            got: got as u64,
        });
    }
    Ok(words[1..].to_vec())
}

/// Reads exactly `bytes` payload bytes and checks that nothing follows them.
fn read_payload(reader: &mut dyn Read, path: &Path, bytes: u64) -> Result<Vec<u8>, DataError> {
    if bytes > MAX_PAYLOAD {
        return Err(DataError::TooLarge { path: path.to_path_buf(), bytes, limit: MAX_PAYLOAD });
    }
    let mut data = Vec::with_capacity(to_usize_u64(bytes.min(INITIAL_CAPACITY)));
    reader.take(bytes).read_to_end(&mut data).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if (data.len() as u64) < bytes {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            part: "payload",
            expected: bytes,
            got: data.len() as u64,
        });
    }
    let mut extra = [0u8; 1];
    if read_full(reader, &mut extra, path)? > 0 {
        return Err(DataError::TrailingData { path: path.to_path_buf(), expected: bytes });
    }
    Ok(data)
}

/// Fills `buf` as far as the stream allows; returns the number of bytes read.
fn read_full(reader: &mut dyn Read, buf: &mut [u8], path: &Path) -> Result<usize, DataError> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(DataError::Io { path: path.to_path_buf(), source }),
        }
    }
    Ok(got)
}

/// Widens a header dimension (`u32` always fits `usize` on the 32- and 64-bit targets clio supports).
fn to_usize(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Narrows a checked size (at most [`MAX_PAYLOAD`]) to `usize`.
fn to_usize_u64(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}
