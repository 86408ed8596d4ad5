//! Encoding of normalized tar headers: a USTAR header, preceded by a PAX extended header
//! when something does not fit the USTAR fields.
//!
//! The bytes are laid out here rather than through `tar::Header` setters so that every byte
//! of the output is decided in one place: reproducible layers depend on it.

use std::collections::BTreeMap;

/// Tar block size.
const BLOCK: usize = 512;

/// Largest value of an 8-byte octal field (7 digits and a NUL).
const MAX_OCTAL_8: u64 = 0o7_777_777;

/// Largest value of a 12-byte octal field (11 digits and a NUL).
const MAX_OCTAL_12: u64 = 0o77_777_777_777;

/// PAX key prefix for extended attributes, as GNU tar, star, Go and the `tar` crate read it.
pub(crate) const PAX_XATTR: &str = "SCHILY.xattr.";

/// Everything that goes into the header of one entry, already normalized.
pub(crate) struct HeaderFields<'a> {
    /// The tar name (directories end with `/`).
    pub(crate) name: String,
    /// The type flag.
    pub(crate) entry_type: tar::EntryType,
    /// Symlink text or hard link target.
    pub(crate) link: Option<String>,
    /// Mode bits (`0o7777` at most).
    pub(crate) mode: u32,
    /// Owner id.
    pub(crate) uid: u64,
    /// Group id.
    pub(crate) gid: u64,
    /// Modification time in seconds.
    pub(crate) mtime: i64,
    /// Content size.
    pub(crate) size: u64,
    /// Device numbers, only for devices.
    pub(crate) device: Option<(u32, u32)>,
    /// Extended attributes.
    pub(crate) xattrs: &'a BTreeMap<String, Vec<u8>>,
}

/// The header bytes for `fields`: one 512-byte block, or a PAX entry and then the block.
///
/// Fails (with a reason) only for what no tar header can carry.
pub(crate) fn encode(fields: &HeaderFields<'_>) -> Result<Vec<u8>, String> {
    let mut block = [0u8; BLOCK];
    // Records in a fixed order: the standard keys as met below, then extended attributes
    // sorted by name. Standard keys come first because the `tar` crate's reader splits
    // records at newlines and stops looking for `size`, `uid` and `gid` at the first record
    // it cannot parse, which a binary attribute value containing a newline would be.
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();

    let name = fields.name.as_bytes();
    if name.len() <= 100 {
        block[..name.len()].copy_from_slice(name);
    } else if let Some((prefix, rest)) = split_ustar_name(name) {
        block[345..345 + prefix.len()].copy_from_slice(prefix);
        block[..rest.len()].copy_from_slice(rest);
    } else {
        // Readers ignoring PAX still get a recognizable (truncated) name.
        block[..100].copy_from_slice(&name[..100]);
        pax.push(("path".into(), name.to_vec()));
    }
    if let Some(link) = &fields.link {
        let link = link.as_bytes();
        if link.len() <= 100 {
            block[157..157 + link.len()].copy_from_slice(link);
        } else {
            block[157..257].copy_from_slice(&link[..100]);
            pax.push(("linkpath".into(), link.to_vec()));
        }
    }

    octal(&mut block[100..108], u64::from(fields.mode));
    // A number outside the octal range goes into a PAX record and its USTAR field stays 0.
    for (range, key, value) in [(108..116, "uid", fields.uid), (116..124, "gid", fields.gid)] {
        if value <= MAX_OCTAL_8 {
            octal(&mut block[range], value);
        } else {
            octal(&mut block[range], 0);
            pax.push((key.into(), value.to_string().into_bytes()));
        }
    }
    if fields.size <= MAX_OCTAL_12 {
        octal(&mut block[124..136], fields.size);
    } else {
        octal(&mut block[124..136], 0);
        pax.push(("size".into(), fields.size.to_string().into_bytes()));
    }
    match u64::try_from(fields.mtime) {
        Ok(mtime) if mtime <= MAX_OCTAL_12 => octal(&mut block[136..148], mtime),
        _ => {
            octal(&mut block[136..148], 0);
            pax.push(("mtime".into(), fields.mtime.to_string().into_bytes()));
        }
    }
    block[156] = fields.entry_type.as_byte();
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    // uname and gname stay empty: names from the build host mean nothing in the image.
    if let Some((major, minor)) = fields.device {
        for (range, value) in [(329..337, major), (337..345, minor)] {
            if u64::from(value) > MAX_OCTAL_8 {
                return Err(format!("device number {value} does not fit a tar header"));
            }
            octal(&mut block[range], u64::from(value));
        }
    }
    for (name, value) in fields.xattrs {
        if name.is_empty() || name.contains(['=', '\0', '\n']) {
            return Err(format!(
                "extended attribute name `{name}` cannot be stored in a tar"
            ));
        }
        pax.push((format!("{PAX_XATTR}{name}"), value.clone()));
    }
    checksum(&mut block);

    if pax.is_empty() {
        return Ok(block.to_vec());
    }
    let mut records = Vec::new();
    for (key, value) in &pax {
        pax_record(&mut records, key, value);
    }
    let mut out = pax_header(&fields.name, records.len() as u64);
    out.extend_from_slice(&records);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out.extend_from_slice(&block);
    Ok(out)
}

/// Splits a long name into USTAR's 155-byte prefix and 100-byte name at a `/`, if possible.
fn split_ustar_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    // The separator itself is dropped: readers join prefix and name with a `/`. A trailing
    // `/` (directories) cannot be the split point, or the name part would be empty.
    let last = name.len().checked_sub(1)?;
    (0..last).rev().filter(|&i| name[i] == b'/').find_map(|i| {
        let (prefix, rest) = (&name[..i], &name[i + 1..]);
        (prefix.len() <= 155 && rest.len() <= 100 && !prefix.is_empty()).then_some((prefix, rest))
    })
}

/// The block of a PAX extended header describing the entry `name` with `size` bytes of records.
fn pax_header(name: &str, size: u64) -> Vec<u8> {
    let mut block = [0u8; BLOCK];
    // The name of the PAX entry is informative only; derive it from the entry's last
    // component, cut to fit and on a character boundary.
    let base = name
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut cut = base.len().min(100 - "PaxHeaders/".len());
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let pax_name = format!("PaxHeaders/{}", &base[..cut]);
    block[..pax_name.len()].copy_from_slice(pax_name.as_bytes());
    octal(&mut block[100..108], 0o644);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    octal(&mut block[124..136], size);
    octal(&mut block[136..148], 0);
    block[156] = tar::EntryType::XHeader.as_byte();
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    checksum(&mut block);
    block.to_vec()
}

/// Appends one `"<len> <key>=<value>\n"` record, where `<len>` counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    // Adding the length's own digits can add a digit to it; settle on a fixed point.
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Writes `value` as zero-padded octal filling `field` but its last byte, which stays NUL.
/// Callers check the range first; a value that still does not fit keeps its low digits.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let mut rest = value;
    for byte in field[..digits].iter_mut().rev() {
        *byte = b'0' + (rest & 7) as u8;
        rest >>= 3;
    }
    field[digits] = 0;
}

/// Fills the checksum field: the byte sum of the block with the field read as spaces.
fn checksum(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    octal(&mut block[148..155], sum);
    block[155] = b' ';
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> HeaderFields<'static> {
        static EMPTY: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        HeaderFields {
            name: name.to_string(),
            entry_type: tar::EntryType::Regular,
            link: None,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            size: 0,
            device: None,
            xattrs: &EMPTY,
        }
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (key, value_len) in [("path", 1), ("path", 93), ("path", 94), ("path", 990)] {
            let mut out = Vec::new();
            pax_record(&mut out, key, &vec![b'x'; value_len]);
            let text = String::from_utf8(out.clone()).expect("utf-8");
            let (len, _) = text.split_once(' ').expect("space");
            assert_eq!(len.parse::<usize>().ok(), Some(out.len()), "{text}");
        }
    }

    #[test]
    fn short_header_is_plain_ustar_with_valid_checksum() {
        let block = encode(&fields("etc/hostname")).expect("encode");
        assert_eq!(block.len(), BLOCK);
        let header = tar::Header::from_byte_slice(&block);
        assert!(header.as_ustar().is_some());
        assert_eq!(header.cksum().ok(), Some(header_sum(&block)));
        assert_eq!(
            &block[265..345],
            &[0u8; 80][..],
            "names and device numbers stay empty"
        );
    }

    fn header_sum(block: &[u8]) -> u32 {
        block
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    b as u32
                }
            })
            .sum()
    }

    #[test]
    fn long_names_use_the_ustar_prefix_before_pax() {
        let name = format!("{}/{}", "p".repeat(150), "n".repeat(90));
        let block = encode(&fields(&name)).expect("encode");
        assert_eq!(block.len(), BLOCK, "fits prefix + name without PAX");
        let header = tar::Header::from_byte_slice(&block);
        assert_eq!(header.path_bytes().as_ref(), name.as_bytes());

        let long = "d/".repeat(200) + "file";
        assert!(
            encode(&fields(&long)).expect("encode").len() > BLOCK,
            "needs PAX"
        );
    }

    #[test]
    fn out_of_range_device_numbers_are_refused() {
        let mut f = fields("dev/x");
        f.device = Some((u32::MAX, 1));
        assert!(encode(&f).is_err());
        f.device = Some((4095, 1_048_575));
        assert!(encode(&f).is_ok());
    }
}
