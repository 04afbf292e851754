//! The size DynamoDB charges an item against its 400 KB limit, by the documented rules:
//! attribute names count in UTF-8 bytes, strings and binaries by length, numbers by their
//! significant digits, lists and maps 3 bytes plus 1 per element on top of their contents.

use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;

pub use crate::records::MAX_ITEM_BYTES;

/// The stored size of `item` in bytes.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, e)| 1 + k.len() + value_size(e)).sum::<usize>(),
        _ => 0,
    }
}

/// About one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits = n
        .trim_start_matches('-')
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1);
    significant.div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_owned())
    }

    #[test]
    fn names_and_values_count() {
        let item = Item::from([
            ("title".to_owned(), s("milk")),
            ("n".to_owned(), AttributeValue::N("12345".into())),
        ]);
        assert_eq!(item_size(&item), 5 + 4 + 1 + 4);
    }

    #[test]
    fn nested_documents_count_their_overhead() {
        let inner = AttributeValue::M([("a".to_owned(), s("xy"))].into());
        let item = Item::from([("m".to_owned(), AttributeValue::L(vec![inner]))]);
        // "m" + list(3 + 1 + map(3 + 1 + "a" + "xy"))
        assert_eq!(item_size(&item), 1 + 3 + 1 + 3 + 1 + 1 + 2);
    }

    #[test]
    fn a_big_string_is_over_the_limit() {
        let item = Item::from([("state".to_owned(), s(&"x".repeat(MAX_ITEM_BYTES)))]);
        assert!(item_size(&item) > MAX_ITEM_BYTES);
    }
}
