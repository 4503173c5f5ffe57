//! Cutting progressive JPEG streams after whole scans, the JPEG analogue of Clio's progressive
//! slices: what the cloud can reconstruct when only the first scans arrived by the deadline.
//!
//! The marker walk knows: SOI and EOI, the stand-alone markers (TEM, RST0..RST7), segments with a
//! two-byte big-endian length, and the entropy-coded data after each SOS, in which `FF 00` is a
//! stuffed `FF` byte, `FF D0..D7` are restart markers and `FF FF` is fill.

use super::{decode, JpegError};

/// Start of image.
const SOI: u8 = 0xd8;
/// End of image.
const EOI: u8 = 0xd9;
/// Start of scan.
const SOS: u8 = 0xda;
/// Temporary private use marker (no length).
const TEM: u8 = 0x01;

/// The byte lengths at which `bytes` can be cut after a complete scan, increasing.
///
/// Entry `k` is the length that holds the first `k + 1` scans: the end of that scan's
/// entropy-coded data (for encoders that put no tables between scans, the offset of the next SOS
/// marker). The last entry is the whole image up to and including EOI. A baseline JPEG has a
/// single scan and so a single entry.
pub fn scan_prefixes(bytes: &[u8]) -> Result<Vec<usize>, JpegError> {
    let layout = layout(bytes)?;
    let mut cuts = layout.scan_ends;
    // Cut after every scan but the last; the last scan's cut is the whole image with its EOI.
    cuts.pop();
    cuts.push(layout.end);
    Ok(cuts)
}

/// The length of everything before the first scan: SOI, JFIF, quantisation and Huffman tables,
/// frame header. For tiny images this overhead dominates the file; a sender and receiver that
/// agree on the tables in advance (JPEG's "abbreviated" streams) need not transmit it.
pub fn header_len(bytes: &[u8]) -> Result<usize, JpegError> {
    layout(bytes).map(|layout| layout.first_scan)
}

/// Where the scans of a stream are.
struct Layout {
    /// Offset of the first SOS marker.
    first_scan: usize,
    /// For each scan, the offset just past its entropy-coded data.
    scan_ends: Vec<usize>,
    /// Offset just past the EOI marker.
    end: usize,
}

/// Walks the markers of `bytes` from SOI to EOI.
fn layout(bytes: &[u8]) -> Result<Layout, JpegError> {
    let malformed = |offset: usize, reason: &str| JpegError::Malformed { offset, reason: reason.to_string() };
    if !bytes.starts_with(&[0xff, SOI]) {
        return Err(malformed(0, "expected the SOI marker FF D8"));
    }
    let mut first_scan = None;
    let mut scan_ends = Vec::new();
    let mut pos = 2;
    loop {
        // A marker: FF, optional FF fill bytes, then the code.
        if bytes.get(pos) != Some(&0xff) {
            return Err(malformed(pos, "expected a marker (FF xx)"));
        }
        while bytes.get(pos + 1) == Some(&0xff) {
            pos += 1;
        }
        let marker = pos;
        let code = *bytes.get(pos + 1).ok_or_else(|| malformed(pos, "stream ends inside a marker (no EOI)"))?;
        pos += 2;
        match code {
            EOI => break,
            TEM | 0xd0..=0xd7 => continue,
            0x00 | SOI => return Err(malformed(marker, &format!("unexpected marker FF {code:02X}"))),
            _ => {}
        }
        let length = match (bytes.get(pos), bytes.get(pos + 1)) {
            (Some(&hi), Some(&lo)) => usize::from(u16::from_be_bytes([hi, lo])),
            _ => return Err(malformed(pos, "stream ends inside a segment length")),
        };
        if length < 2 || pos + length > bytes.len() {
            return Err(malformed(pos, &format!("segment FF {code:02X} of length {length} does not fit")));
        }
        pos += length;
        if code == SOS {
            first_scan.get_or_insert(marker);
            pos = skip_entropy_data(bytes, pos).ok_or_else(|| malformed(pos, "scan data runs to the end (no EOI)"))?;
            scan_ends.push(pos);
        }
    }
    match first_scan {
        Some(first_scan) => Ok(Layout { first_scan, scan_ends, end: pos }),
        None => Err(malformed(pos, "no scan (SOS) before EOI")),
    }
}

/// The offset of the first marker after the entropy-coded data starting at `pos`, or `None` when
/// the data run to the end of the stream.
fn skip_entropy_data(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let offset = bytes.get(pos..)?.iter().position(|&b| b == 0xff)?;
        pos += offset;
        match bytes.get(pos + 1)? {
            // Stuffed byte or restart marker: still inside the scan.
            0x00 | 0xd0..=0xd7 => pos += 2,
            // Fill byte before a marker.
            0xff => pos += 1,
            _ => return Some(pos),
        }
    }
}

/// Decodes the first `len` bytes of `bytes` (one of the [`scan_prefixes`]) as a whole image, by
/// appending an EOI marker: coefficients of the scans that did not arrive count as zero.
///
/// Returns the grayscale pixels (the image size is that of the full image).
pub fn decode_prefix(bytes: &[u8], len: usize) -> Result<Vec<u8>, JpegError> {
    let boundaries = scan_prefixes(bytes)?;
    if !boundaries.contains(&len) {
        return Err(JpegError::NotAScanBoundary { len, boundaries });
    }
    let mut prefix = bytes[..len].to_vec();
    if boundaries.last() != Some(&len) {
        prefix.extend_from_slice(&[0xff, EOI]);
    }
    decode(&prefix).map(|(pixels, _, _)| pixels)
}
