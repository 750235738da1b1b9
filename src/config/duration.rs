//! Go `time.Duration` text: parsing (`time.ParseDuration`) and printing (`Duration.String`), so
//! that ConfigMaps written for the Go WVA mean the same here and messages read the same.
//! Pure string handling.

/// Nanoseconds, signed, as Go's `time.Duration`.
pub type Nanos = i64;

/// A duration text Go's `time.ParseDuration` would refuse, with Go's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(pub String);

impl From<&str> for DurationError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

pub const SECOND: Nanos = 1_000_000_000;
pub const MINUTE: Nanos = 60 * SECOND;
pub const HOUR: Nanos = 60 * MINUTE;

/// Parses a duration such as `300ms`, `-1.5h` or `2h45m`, with Go's units (`ns`, `us`, `µs`,
/// `μs`, `ms`, `s`, `m`, `h`) and Go's error texts.
pub fn parse_go_duration(text: &str) -> Result<Nanos, DurationError> {
    let invalid = || DurationError(format!("time: invalid duration \"{text}\""));
    let mut rest = text;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (whole, after) = rest.split_at(digits_end);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(f) => {
                let end = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                f.split_at(end)
            }
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_end = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        if unit.is_empty() {
            return Err(DurationError(format!(
                "time: missing unit in duration \"{text}\""
            )));
        }
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => SECOND as u128,
            "m" => MINUTE as u128,
            "h" => HOUR as u128,
            _ => {
                return Err(DurationError(format!(
                    "time: unknown unit \"{unit}\" in duration \"{text}\""
                )));
            }
        };
        let whole_value: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse::<u128>().map_err(|_| invalid())?
        };
        let mut value = whole_value.checked_mul(scale).ok_or_else(invalid)?;
        // The fraction contributes floor(fraction * scale), digit by digit, as Go does.
        let mut place = scale;
        for digit in fraction.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            value += u128::from(digit - b'0') * place;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err(invalid());
        }
        rest = after;
    }
    if negative {
        Ok((total as i128).wrapping_neg() as i64)
    } else {
        Ok(total as i64)
    }
}

/// Formats like Go's `Duration.String`: `1h30m0s`, `10m0s`, `1.5s`, `300ms`, `0s`.
pub fn format_go_duration(nanos: Nanos) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let negative = nanos < 0;
    let magnitude = nanos.unsigned_abs();
    let sign = if negative { "-" } else { "" };
    if magnitude < SECOND as u64 {
        let (unit, scale) = if magnitude < 1_000 {
            ("ns", 1)
        } else if magnitude < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", fixed(magnitude, scale));
    }
    let hours = magnitude / HOUR as u64;
    let minutes = (magnitude % HOUR as u64) / MINUTE as u64;
    let seconds = fixed(magnitude % MINUTE as u64, SECOND as u64);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `value / scale` with the fraction's trailing zeros dropped.
fn fixed(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let fraction = value % scale;
    if fraction == 0 {
        return whole.to_string();
    }
    let width = scale.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        for (text, nanos) in [
            ("10m", 10 * MINUTE),
            ("1h30m", 90 * MINUTE),
            ("1.5h", 90 * MINUTE),
            ("300ms", 300_000_000),
            (
                "2h45m30.5s",
                2 * HOUR + 45 * MINUTE + 30 * SECOND + SECOND / 2,
            ),
            ("0", 0),
            ("-5m", -5 * MINUTE),
            ("+1s", SECOND),
            ("1µs", 1_000),
            ("1us", 1_000),
            ("7ns", 7),
            (".5s", SECOND / 2),
            ("24h", 24 * HOUR),
        ] {
            assert_eq!(parse_go_duration(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects_with_go_messages() {
        assert_eq!(
            parse_go_duration(""),
            Err("time: invalid duration \"\"".into())
        );
        assert_eq!(
            parse_go_duration("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_go_duration("10x"),
            Err("time: unknown unit \"x\" in duration \"10x\"".into())
        );
        assert_eq!(
            parse_go_duration("-"),
            Err("time: invalid duration \"-\"".into())
        );
        assert_eq!(
            parse_go_duration("."),
            Err("time: invalid duration \".\"".into())
        );
        assert!(parse_go_duration("9999999999h").is_err());
        assert!(parse_go_duration("10 m").is_err());
    }

    #[test]
    fn formats_like_go() {
        for (nanos, text) in [
            (0, "0s"),
            (10 * MINUTE, "10m0s"),
            (90 * MINUTE, "1h30m0s"),
            (-5 * MINUTE, "-5m0s"),
            (SECOND + SECOND / 2, "1.5s"),
            (300_000_000, "300ms"),
            (1_500, "1.5µs"),
            (7, "7ns"),
            (25 * HOUR, "25h0m0s"),
        ] {
            assert_eq!(format_go_duration(nanos), text);
        }
    }
}
