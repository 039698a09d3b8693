//! Numbers written for people: thousands separators for messages and labels. Plain functions,
//! no state; used by the engine's messages and by the app's labels.

/// A string of digits with a comma between groups of three: `8000000` → `8,000,000`.
pub fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An integer with thousands separators: `8000000` → `8,000,000`.
pub fn group_thousands(n: u64) -> String {
    group_digits(&n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(8_000_000), "8,000,000");
        assert_eq!(group_thousands(123_456_789), "123,456,789");
        assert_eq!(group_digits("1234567"), "1,234,567");
    }
}
