//! Amounts: providers send major units as numbers or decimal strings;
//! the domain counts minor units as integers.

use serde_json::Value;

/// ISO 4217 currencies without a minor unit.
const ZERO_DECIMAL: &[&str] =
    &["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"];

/// `part` of `whole` (two amounts in one unit), in billionths, where it is
/// less than the whole: the share of a period a prorated charge pays for.
pub fn partial_share(part: i64, whole: i64) -> Option<i64> {
    let (part, whole) = (i128::from(part.max(0)), i128::from(whole));
    (whole > 0 && part < whole).then(|| i64::try_from(part * 1_000_000_000 / whole).ok()).flatten()
}

/// An amount in major units (`250.5`, `"19.99"`: Flutterwave's numbers,
/// Kill Bill's BigDecimals) in the currency's minor units. Converted through
/// the decimal text, never floating-point arithmetic; anything with more
/// precision than the currency has, a sign, or an exponent is refused.
pub fn minor_units(amount: &Value, currency: Option<&str>) -> Option<i64> {
    let text = match amount {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    let exponent =
        if currency.is_some_and(|c| ZERO_DECIMAL.contains(&c.to_ascii_uppercase().as_str())) { 0 } else { 2 };
    decimal_to_minor(&text, exponent)
}

/// A plain non-negative decimal (`"9.99"`, `"1000"`) scaled by
/// 10^`exponent`, exactly, with checked arithmetic. `None` for anything else
/// (a sign, an exponent, `"5."`), or for more non-zero decimals than
/// `exponent` allows.
pub fn decimal_to_minor(text: &str, exponent: usize) -> Option<i64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.contains('.') && fraction.is_empty() {
        return None;
    }
    let (kept, dropped) = fraction.split_at(fraction.len().min(exponent));
    if dropped.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut minor: i64 = whole.parse().ok()?;
    for position in 0..exponent {
        let digit = kept.as_bytes().get(position).map_or(0, |b| i64::from(b - b'0'));
        minor = minor.checked_mul(10)?.checked_add(digit)?;
    }
    Some(minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_convert_to_minor_units_without_rounding() {
        let n = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(minor_units(&n("100"), Some("NGN")), Some(10_000));
        assert_eq!(minor_units(&n("250.5"), Some("USD")), Some(25_050));
        assert_eq!(minor_units(&n("0.07"), Some("USD")), Some(7));
        assert_eq!(minor_units(&n("1500"), Some("UGX")), Some(1_500));
        assert_eq!(minor_units(&n("1500.5"), Some("UGX")), None, "UGX has no minor unit");
        assert_eq!(minor_units(&n("1.005"), Some("USD")), None, "more precision than cents");
        assert_eq!(minor_units(&n("-5"), Some("USD")), None);
        assert_eq!(minor_units(&Value::String("1e400".into()), Some("USD")), None);
        assert_eq!(minor_units(&n("99999999999999999999"), Some("USD")), None);
        assert_eq!(minor_units(&Value::String("19.99".into()), Some("eur")), Some(1999));
        assert_eq!(minor_units(&Value::String("5.".into()), Some("EUR")), None);
        assert_eq!(minor_units(&Value::String("92233720368547758.08".into()), Some("EUR")), None, "overflow");
    }
}
