//! Just enough HTTP/1.1 framing for the test servers and the fault proxy: reading a message
//! head, telling how its body is framed (`Content-Length`, chunked, until close), copying a
//! body (optionally only its first bytes), and the small encodings the token flow needs
//! (base64, base64url, base32, URL form decoding).

use std::io::{self, BufRead, Write};

/// The longest message head accepted, so a confused peer cannot make a test eat memory.
const MAX_HEAD: usize = 64 * 1024;

/// A request or response head: the start line and the header fields in order.
#[derive(Clone, Debug)]
pub struct Head {
    /// `GET /v2/ HTTP/1.1` or `HTTP/1.1 200 OK`, without the line break.
    pub start_line: String,
    /// Header names as sent and their values, trimmed.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the comma-separated header `name` lists `token` (case-insensitive), as in
    /// `Connection: close` or `Transfer-Encoding: chunked`.
    pub fn lists(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .flat_map(|(_, value)| value.split(','))
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    }

    /// The `Content-Length`, if present and a number.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|value| value.trim().parse().ok())
    }

    /// The first word of the start line: the method of a request, the version of a response.
    pub fn first_word(&self) -> &str {
        self.start_line.split(' ').next().unwrap_or("")
    }

    /// The second word: the target of a request, the status code of a response.
    pub fn second_word(&self) -> &str {
        self.start_line.split(' ').nth(1).unwrap_or("")
    }

    /// The status code of a response head (0 when unreadable).
    pub fn status(&self) -> u16 {
        self.second_word().parse().unwrap_or(0)
    }

    /// Whether the connection ends after this message (`Connection: close`, or HTTP/1.0
    /// without `Connection: keep-alive`).
    pub fn closes(&self) -> bool {
        let version = if self.start_line.starts_with("HTTP/") {
            self.first_word()
        } else {
            self.start_line.rsplit(' ').next().unwrap_or("")
        };
        self.lists("connection", "close")
            || (version == "HTTP/1.0" && !self.lists("connection", "keep-alive"))
    }

    /// The head as bytes to send, leaving out the headers named in `skip`.
    pub fn to_bytes_without(&self, skip: &[&str]) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(self.start_line.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            if skip.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// Reads a message head; `Ok(None)` when the peer closed the connection before sending one.
pub fn read_head<R: BufRead>(reader: &mut R) -> io::Result<Option<Head>> {
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            if lines.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message head longer than 64 KiB",
            ));
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if text.is_empty() {
            // Blank lines before a request are allowed (RFC 9112, 2.2); after one, the head ends.
            if lines.is_empty() {
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let start_line = lines.remove(0);
    let headers = lines
        .into_iter()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect();
    Ok(Some(Head {
        start_line,
        headers,
    }))
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the sender closes the connection (responses only).
    UntilClose,
}

/// The framing of a request body.
pub fn request_framing(head: &Head) -> Framing {
    if head.lists("transfer-encoding", "chunked") {
        Framing::Chunked
    } else {
        match head.content_length() {
            Some(0) | None => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    }
}

/// The framing of a response body to a request with `method`.
pub fn response_framing(head: &Head, method: &str) -> Framing {
    let status = head.status();
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        Framing::Empty
    } else if head.lists("transfer-encoding", "chunked") {
        Framing::Chunked
    } else {
        match head.content_length() {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    }
}

/// What [`copy_body`] moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    /// Payload bytes (chunk framing not counted).
    pub payload: u64,
    /// Whether the whole body was copied (false when stopped at the limit).
    pub complete: bool,
}

/// Copies a body framed as `framing` from `reader` to `writer`, as it is on the wire (chunk
/// framing included), stopping once `limit` payload bytes were written when a limit is given
/// and the body is longer.
pub fn copy_body<R: BufRead, W: Write>(
    reader: &mut R,
    writer: &mut W,
    framing: Framing,
    limit: Option<u64>,
) -> io::Result<Copied> {
    let limit = limit.unwrap_or(u64::MAX);
    match framing {
        Framing::Empty => Ok(Copied {
            payload: 0,
            complete: true,
        }),
        Framing::Length(n) => {
            let want = n.min(limit);
            let copied = copy_exact(reader, writer, want)?;
            Ok(Copied {
                payload: copied,
                complete: copied == n,
            })
        }
        Framing::UntilClose => {
            let mut payload = 0;
            loop {
                let buf = reader.fill_buf()?;
                if buf.is_empty() {
                    return Ok(Copied {
                        payload,
                        complete: true,
                    });
                }
                let take = (buf.len() as u64).min(limit - payload) as usize;
                writer.write_all(&buf[..take])?;
                reader.consume(take);
                payload += take as u64;
                if payload >= limit {
                    return Ok(Copied {
                        payload,
                        complete: false,
                    });
                }
            }
        }
        Framing::Chunked => copy_chunked(reader, writer, limit),
    }
}

fn copy_chunked<R: BufRead, W: Write>(
    reader: &mut R,
    writer: &mut W,
    limit: u64,
) -> io::Result<Copied> {
    let mut payload = 0u64;
    loop {
        let line = read_line(reader)?;
        writer.write_all(&line)?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let size = u64::from_str_radix(&size_text, 16).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad chunk size line {:?}", text.trim()),
            )
        })?;
        if size == 0 {
            // Trailer fields, then the blank line that ends the body.
            loop {
                let trailer = read_line(reader)?;
                writer.write_all(&trailer)?;
                if trailer == b"\r\n" || trailer == b"\n" {
                    return Ok(Copied {
                        payload,
                        complete: true,
                    });
                }
            }
        }
        let room = limit - payload;
        let copied = copy_exact(reader, writer, size.min(room))?;
        payload += copied;
        if copied < size {
            return Ok(Copied {
                payload,
                complete: false,
            });
        }
        let end = read_line(reader)?;
        writer.write_all(&end)?;
        if payload >= limit {
            return Ok(Copied {
                payload,
                complete: false,
            });
        }
    }
}

fn read_line<R: BufRead>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a chunked body",
        ));
    }
    Ok(line)
}

fn copy_exact<R: BufRead, W: Write>(reader: &mut R, writer: &mut W, n: u64) -> io::Result<u64> {
    let mut left = n;
    while left > 0 {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("connection closed with {left} body bytes still expected"),
            ));
        }
        let take = (buf.len() as u64).min(left) as usize;
        writer.write_all(&buf[..take])?;
        reader.consume(take);
        left -= take as u64;
    }
    Ok(n)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Base64url without padding, as JWTs use.
pub fn base64url_encode(data: &[u8]) -> String {
    base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// Decodes standard or URL-safe base64, padded or not; `None` on a bad character.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim().bytes().filter(|&c| c != b'=') {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// RFC 4648 base32 without padding.
pub fn base32_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let mut bits = 0u64;
    let mut count = 0;
    for &byte in data {
        bits = (bits << 8) | u64::from(byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            out.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
    }
    if count > 0 {
        out.push(ALPHABET[((bits << (5 - count)) & 31) as usize] as char);
    }
    out
}

/// Decodes `application/x-www-form-urlencoded` text (a query string or a form body) into
/// its pairs, in order, repeated names kept.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
