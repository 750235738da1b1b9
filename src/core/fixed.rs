//! Fixed-point number text for decision notes: [`F0`] and [`F2`] print exactly what
//! `{:.0}` and `{:.2}` print (round half to even on the exact binary value), with integer
//! arithmetic instead of the standard library's exact float formatting, which is a tenth of a
//! `wva-next` cycle at 10,000 variants (docs/performance.md#wva-next). Text only: no IO.

use std::fmt;

/// `{:.0}` of the number.
#[derive(Clone, Copy, Debug)]
pub struct F0(pub f64);

/// `{:.2}` of the number.
#[derive(Clone, Copy, Debug)]
pub struct F2(pub f64);

impl fmt::Display for F0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fixed(f, self.0, 0)
    }
}

impl fmt::Display for F2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fixed(f, self.0, 2)
    }
}

/// Beyond this `x × 100` is no longer exact in units of 0.5 (2^52 / 100 ≈ 4.5e13): the standard
/// formatting takes over.
const LIMIT: f64 = 1e13;

fn fixed(f: &mut fmt::Formatter<'_>, x: f64, digits: usize) -> fmt::Result {
    if !x.is_finite() || x.abs() >= LIMIT {
        return write!(f, "{x:.digits$}");
    }
    let scale = if digits == 0 { 1.0 } else { 100.0 };
    let y = x * scale;
    let mut rounded = y.round_ties_even();
    // `y` is the product rounded to a double: when it lands exactly on a half, the exact
    // product may lie on either side of it (its rounding error says which).
    if y - y.floor() == 0.5 {
        let error = x.mul_add(scale, -y);
        if error > 0.0 {
            rounded = y.ceil();
        } else if error < 0.0 {
            rounded = y.floor();
        }
    }
    // Digits right to left into a buffer, written at once (the formatter's integer path is
    // most of the cost otherwise). Below LIMIT × 100 a number has at most 15 digits.
    let mut units = rounded.abs() as u64;
    let mut buf = [0u8; 24];
    let mut at = buf.len();
    let mut push = |b: u8| {
        at -= 1;
        buf[at] = b;
    };
    if digits == 2 {
        push(b'0' + (units % 10) as u8);
        push(b'0' + (units / 10 % 10) as u8);
        push(b'.');
        units /= 100;
    }
    loop {
        push(b'0' + (units % 10) as u8);
        units /= 10;
        if units == 0 {
            break;
        }
    }
    if x.is_sign_negative() {
        push(b'-');
    }
    f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_text_as_the_standard_formatting() {
        let mut values = vec![
            0.0,
            -0.0,
            0.125,
            0.375,
            2.5,
            0.5,
            1.5,
            1.005,
            2.675,
            0.145,
            -0.001,
            -2.5,
            99.995,
            123456789.125,
            1e14 + 0.5,
            1e15,
            1e300,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            f64::MIN_POSITIVE,
            4503599627370495.5,
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bits = state;
            // Halves and quarters (exact ties), plain decimals, and arbitrary doubles.
            values.push((bits % 100_000) as f64 / 8.0);
            values.push((bits % 10_000_000) as f64 / 1000.0);
            let any = f64::from_bits(bits);
            if any.is_finite() {
                values.push(any);
            }
            values.push((bits >> 11) as f64 / (1u64 << 53) as f64 * 1e6);
        }
        for x in values {
            assert_eq!(F2(x).to_string(), format!("{x:.2}"), "{x:e}");
            assert_eq!(F0(x).to_string(), format!("{x:.0}"), "{x:e}");
        }
    }
}
