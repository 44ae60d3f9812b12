//! How an event's body is kept in `event_bodies`: LZ4-compressed where that
//! is smaller (JSON payloads shrink three to six times, so most fit in one
//! page instead of spilling onto overflow pages), else as sent.

/// As sent.
const RAW: i64 = 0;
/// An LZ4 block with the body's length in front (little-endian `u32`).
const LZ4: i64 = 1;

/// No body Chorus takes is near this; a longer stated length is corruption,
/// not something to allocate.
const MAX_LEN: usize = 256 << 20;

/// The bytes to store and their encoding (`body` itself when compressing
/// does not make it smaller).
pub(crate) fn seal(body: Vec<u8>) -> (Vec<u8>, i64) {
    let packed = lz4_flex::block::compress_prepend_size(&body);
    if packed.len() < body.len() { (packed, LZ4) } else { (body, RAW) }
}

/// The body as sent, or `None` if the stored bytes cannot be what
/// [`seal`] wrote.
pub(crate) fn open(stored: Vec<u8>, encoding: i64) -> Option<Vec<u8>> {
    match encoding {
        RAW => Some(stored),
        LZ4 => {
            let len = u32::from_le_bytes(stored.get(..4)?.try_into().ok()?) as usize;
            if len > MAX_LEN {
                return None;
            }
            lz4_flex::block::decompress_size_prepended(&stored).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_come_back_as_sent_and_damage_is_refused() {
        let json = br#"{"repository": {"full_name": "octo/hello", "html_url": "https://github.com/octo/hello"}, "commits": []}"#.repeat(40);
        let (stored, encoding) = seal(json.clone());
        assert_eq!(encoding, LZ4);
        assert!(stored.len() * 3 < json.len(), "{} of {}", stored.len(), json.len());
        assert_eq!(open(stored.clone(), encoding).unwrap(), json);

        // Too short to gain anything: kept as sent.
        for small in [&b""[..], b"{}", b"\x00\xff\x13"] {
            let (stored, encoding) = seal(small.to_vec());
            assert_eq!((stored.as_slice(), encoding), (small, RAW));
            assert_eq!(open(stored, encoding).unwrap(), small);
        }

        let mut cut = stored.clone();
        cut.truncate(stored.len() / 2);
        assert_eq!(open(cut, LZ4), None);
        let mut huge = stored.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(open(huge, LZ4), None);
        assert_eq!(open(vec![1, 2], LZ4), None);
        assert_eq!(open(stored, 7), None);
    }
}
