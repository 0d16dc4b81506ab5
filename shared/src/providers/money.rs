//! Amounts: providers send major units as numbers or decimal strings;
//! the domain counts minor units as integers.

use serde_json::Value;

/// ISO 4217 currencies without a minor unit.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
];

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
    let digits = if currency.is_some_and(|c| ZERO_DECIMAL.contains(&c)) { 0 } else { 2 };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > digits || whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scaled = format!("{whole}{fraction:0<digits$}");
    scaled.parse::<i64>().ok()
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
    }
}
