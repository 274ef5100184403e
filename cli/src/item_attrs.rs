//! Reading attributes of a DynamoDB item that the CLI reads raw (a `Query` of an index that
//! projects only some attributes): a string, a number, `None` when absent or of another type.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// An item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// The string attribute `name`.
pub fn text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

/// The number attribute `name`, parsed as `T`.
pub fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribute_of_another_type_is_absent() {
        let item = Item::from([
            ("status".to_owned(), AttributeValue::S("sent".into())),
            ("attempts".to_owned(), AttributeValue::N("2".into())),
        ]);
        assert_eq!(text(&item, "status").as_deref(), Some("sent"));
        assert_eq!(number::<u32>(&item, "attempts"), Some(2));
        assert_eq!(text(&item, "attempts"), None);
        assert_eq!(number::<u32>(&item, "status"), None);
        assert_eq!(text(&item, "campaign"), None);
    }
}
