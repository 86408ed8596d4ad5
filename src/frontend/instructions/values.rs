//! Scalar option values (durations, integers, booleans, sizes) accepted exactly as BuildKit's Go
//! runtime accepts them, so a Dockerfile valid there is valid here and vice versa.

use std::time::Duration;

/// A signed duration in nanoseconds, as Go's `time.ParseDuration` produces it.
///
/// Negative values are legal syntax; callers decide whether they make sense.
pub(crate) fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(text));
    const LIMIT: u128 = 1 << 63;
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if first != b'.' && !first.is_ascii_digit() {
            return Err(invalid());
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let whole: u128 = if digits == 0 {
            0
        } else {
            rest[..digits]
                .parse::<u128>()
                .ok()
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?
        };
        rest = &rest[digits..];
        let mut fraction: u128 = 0;
        let mut scale: f64 = 1.0;
        let mut fraction_digits = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            fraction_digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflowed = false;
            for digit in after_dot.bytes().take(fraction_digits) {
                // Like Go, stop accumulating precision once more digits cannot matter.
                if overflowed || fraction > (LIMIT - 1) / 10 {
                    overflowed = true;
                    continue;
                }
                fraction = fraction * 10 + u128::from(digit - b'0');
                scale *= 10.0;
            }
            rest = &after_dot[fraction_digits..];
        }
        if digits == 0 && fraction_digits == 0 {
            return Err(invalid());
        }
        let unit_len = rest
            .bytes()
            .take_while(|b| *b != b'.' && !b.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(text)));
        }
        let unit_text = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit: u128 = match unit_text {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                let (u, d) = (go_quote(unit_text), go_quote(text));
                return Err(format!("time: unknown unit {u} in duration {d}"));
            }
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            value += (fraction as f64 * (unit as f64 / scale)) as u128;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Ok(-(total as i128));
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i128)
}

/// A HEALTHCHECK interval flag: empty or zero means "use the default" (0), otherwise at least 1ms.
pub(crate) fn parse_interval(flag: &str, text: Option<&str>) -> Result<Duration, String> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    let nanos = parse_go_duration(text)?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if nanos < 1_000_000 {
        return Err(format!(
            "interval {} cannot be less than 1ms",
            go_quote(flag)
        ));
    }
    let nanos = u64::try_from(nanos).map_err(|_| format!("time: invalid duration {text:?}"))?;
    Ok(Duration::from_nanos(nanos))
}

/// A signed decimal integer that must fit in 32 bits, with Go's `strconv.ParseInt` errors.
pub(crate) fn parse_go_i32(text: &str) -> Result<i32, String> {
    text.parse::<i32>().map_err(|e| {
        let reason = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.ParseInt: parsing {}: {reason}", go_quote(text))
    })
}

/// An unsigned 32-bit integer in `radix`; unlike Rust, Go rejects a leading `+`.
pub(crate) fn parse_go_u32(text: &str, radix: u32) -> Option<u32> {
    if text.starts_with('+') {
        return None;
    }
    u32::from_str_radix(text, radix).ok()
}

/// A boolean spelled any way Go's `strconv.ParseBool` accepts.
pub(crate) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A memory size such as `64m`, `1.5GiB` or `100 kb` in bytes, binary multiples (docker units).
pub(crate) fn parse_ram_size(text: &str) -> Option<u64> {
    let split = text.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    // The byte found is ASCII, so both slices fall on character boundaries.
    let (number, suffix) = if text.as_bytes()[split] == b' ' {
        (&text[..split], &text[split + 1..])
    } else {
        (&text[..=split], &text[split + 1..])
    };
    let size = parse_go_float(number)?;
    if size < 0.0 {
        return None;
    }
    let suffix = suffix.to_ascii_lowercase();
    let multiplier: f64 = match suffix.as_bytes() {
        [] | [b'b'] => 1.0,
        [prefix, tail @ ..] if tail.is_empty() || tail == b"b" || tail == b"ib" => match prefix {
            b'k' => 1024.0,
            b'm' => 1024.0 * 1024.0,
            b'g' => 1024.0 * 1024.0 * 1024.0,
            b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
            b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        },
        _ => return None,
    };
    // Go converts the float to int64 directly; saturate instead of wrapping.
    Some((size * multiplier) as u64)
}

/// A decimal floating point number in the syntax Go's `strconv.ParseFloat` accepts.
fn parse_go_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let plain = !body.is_empty()
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if !plain {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

pub(crate) use crate::frontend::expand::go_quote;
