//! Layer compression: the encoders a layer blob is written through, and transparent
//! decompression of a blob whose format is recognized from its first bytes.

use std::io::{self, BufRead, BufReader, Cursor, Read, Write};

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

/// The gzip level used for layers: the same trade-off Docker and BuildKit make by default.
pub const GZIP_LEVEL: u32 = 6;

/// The zstd level used for layers (zstd's own default).
pub const ZSTD_LEVEL: i32 = 3;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
// Formats that can appear in old Docker layers but that this tool does not decode; recognizing
// them turns a confusing tar parse error into a clear one.
const XZ_MAGIC: [u8; 4] = [0xfd, 0x37, 0x7a, 0x58];
const BZIP2_MAGIC: [u8; 3] = *b"BZh";
// Enough bytes to tell every format above apart.
const PEEK_LEN: usize = 4;

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip at level [`GZIP_LEVEL`]; the default because every runtime can read it.
    #[default]
    Gzip,
    /// zstd at level [`ZSTD_LEVEL`].
    Zstd,
    /// A plain tar.
    None,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
        }
    }

    /// Wraps `inner` in an encoder for this compression.
    pub fn encoder<W: Write>(self, inner: W) -> io::Result<Encoder<W>> {
        Ok(match self {
            // The gzip header written by flate2 has mtime 0 and no file name, so the output
            // depends only on the input bytes: needed for reproducible layer digests.
            Compression::Gzip => {
                Encoder::Gzip(GzEncoder::new(inner, flate2::Compression::new(GZIP_LEVEL)))
            }
            Compression::Zstd => {
                let mut encoder = zstd::Encoder::new(inner, ZSTD_LEVEL)?;
                // A frame checksum lets any reader detect a corrupted blob without the digest.
                encoder.include_checksum(true)?;
                Encoder::Zstd(encoder)
            }
            Compression::None => Encoder::None(inner),
        })
    }
}

/// A writer compressing into an inner writer; [`Encoder::finish`] must be called to write the
/// compressed trailer.
pub enum Encoder<W: Write> {
    /// gzip.
    Gzip(GzEncoder<W>),
    /// zstd.
    Zstd(zstd::Encoder<'static, W>),
    /// No compression: bytes pass through.
    None(W),
}

impl<W: Write> Encoder<W> {
    /// Writes the end of the compressed stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(encoder) => encoder.finish(),
            Encoder::Zstd(encoder) => encoder.finish(),
            Encoder::None(inner) => Ok(inner),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(encoder) => encoder.write(buf),
            Encoder::Zstd(encoder) => encoder.write(buf),
            Encoder::None(inner) => inner.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(encoder) => encoder.flush(),
            Encoder::Zstd(encoder) => encoder.flush(),
            Encoder::None(inner) => inner.flush(),
        }
    }
}

/// The format detected from the first bytes of a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detected {
    Gzip,
    Zstd,
    Plain,
    Unsupported(&'static str),
}

fn detect(prefix: &[u8]) -> Detected {
    if prefix.starts_with(&GZIP_MAGIC) {
        Detected::Gzip
    } else if prefix.starts_with(&ZSTD_MAGIC) {
        Detected::Zstd
    } else if prefix.starts_with(&XZ_MAGIC) {
        Detected::Unsupported("xz")
    } else if prefix.starts_with(&BZIP2_MAGIC) {
        Detected::Unsupported("bzip2")
    } else {
        Detected::Plain
    }
}

/// Wraps a blob reader, detecting gzip / zstd / plain tar from the first bytes.
///
/// Nothing is lost: the bytes looked at are read again by the decoder. Concatenated gzip
/// members and zstd frames are decoded as one stream, as layer tools produce them.
pub fn decompressed(reader: impl Read + 'static) -> io::Result<Box<dyn Read>> {
    let mut buffered = BufReader::with_capacity(64 * 1024, reader);
    let available = buffered.fill_buf()?.len();
    if available == 0 || available >= PEEK_LEN {
        let kind = detect(buffered.fill_buf()?);
        return wrap(kind, buffered);
    }
    // A short first read (a pipe or socket handing over a few bytes): the buffer cannot be
    // refilled while it holds data, so move those bytes out, read up to the peek length, and
    // put everything back in front of the rest of the stream.
    let mut prefix = buffered.fill_buf()?.to_vec();
    buffered.consume(prefix.len());
    while prefix.len() < PEEK_LEN {
        let chunk = buffered.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let take = chunk.len().min(PEEK_LEN - prefix.len());
        prefix.extend_from_slice(&chunk[..take]);
        buffered.consume(take);
    }
    let kind = detect(&prefix);
    wrap(kind, BufReader::new(Cursor::new(prefix).chain(buffered)))
}

fn wrap<R: BufRead + 'static>(kind: Detected, reader: R) -> io::Result<Box<dyn Read>> {
    match kind {
        Detected::Gzip => Ok(Box::new(MultiGzDecoder::new(reader))),
        Detected::Zstd => Ok(Box::new(zstd::Decoder::with_buffer(reader)?)),
        Detected::Plain => Ok(Box::new(reader)),
        Detected::Unsupported(name) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("layer is compressed with `{name}`, which is not supported"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader handing over one byte per call, like a slow pipe.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    fn compress(compression: Compression, data: &[u8]) -> Vec<u8> {
        let mut encoder = compression.encoder(Vec::new()).expect("encoder");
        encoder.write_all(data).expect("write");
        encoder.finish().expect("finish")
    }

    fn read_all(reader: impl Read + 'static) -> Vec<u8> {
        let mut out = Vec::new();
        decompressed(reader)
            .expect("detect")
            .read_to_end(&mut out)
            .expect("read");
        out
    }

    #[test]
    fn round_trips_every_compression() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let blob = compress(compression, &data);
            if compression != Compression::None {
                assert!(blob.len() < data.len(), "{compression:?} did not compress");
            }
            assert_eq!(read_all(Cursor::new(blob.clone())), data, "{compression:?}");
            assert_eq!(read_all(Trickle(blob, 0)), data, "{compression:?} trickled");
        }
    }

    #[test]
    fn detects_formats_from_magic_bytes() {
        assert_eq!(detect(&compress(Compression::Gzip, b"x")), Detected::Gzip);
        assert_eq!(detect(&compress(Compression::Zstd, b"x")), Detected::Zstd);
        assert_eq!(detect(b"etc/\0\0\0"), Detected::Plain);
        assert_eq!(detect(b"\x1f"), Detected::Plain);
        assert_eq!(
            detect(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0]),
            Detected::Unsupported("xz")
        );
    }

    #[test]
    fn short_and_empty_plain_inputs_survive() {
        assert_eq!(read_all(Cursor::new(Vec::new())), b"");
        assert_eq!(read_all(Cursor::new(b"ab".to_vec())), b"ab");
        assert_eq!(read_all(Trickle(b"abcdefgh".to_vec(), 0)), b"abcdefgh");
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let mut blob = compress(Compression::Gzip, b"hello ");
        blob.extend(compress(Compression::Gzip, b"world"));
        assert_eq!(read_all(Cursor::new(blob)), b"hello world");
    }

    #[test]
    fn unsupported_compression_is_refused() {
        let error = decompressed(Cursor::new(b"BZh91AY&SY".to_vec()))
            .err()
            .expect("refused");
        assert!(error.to_string().contains("`bzip2`"), "{error}");
    }

    #[test]
    fn gzip_output_is_reproducible() {
        assert_eq!(
            compress(Compression::Gzip, b"same"),
            compress(Compression::Gzip, b"same")
        );
        assert_eq!(Compression::default(), Compression::Gzip);
    }
}
