//! The warning of a body-only bulk send (DESIGN.md, "Conversations"): how many of the parents
//! have a closed 24-hour window, from their Consent items' `last_inbound_at`, so that the
//! operator can add `--fallback-template` before WhatsApp refuses the text (63016).

use std::collections::BTreeSet;

use missive::domain::phone::PhoneNumber;
use missive::domain::window::is_open;

use crate::context::Context;
use crate::error::CliResult;
use crate::item_attrs::{number, text};
use crate::report_page::load::batch_get;

/// `send`'s own margin (`WINDOW_MARGIN_SECONDS`' default): a window that ends within five
/// minutes counts as closed.
const MARGIN_SECONDS: i64 = 300;

/// How many of `phones` (distinct) have a closed window at `now`.
pub async fn closed_windows(ctx: &Context, phones: &[&PhoneNumber], now: i64) -> CliResult<(usize, usize)> {
    let distinct: BTreeSet<String> = phones.iter().map(|p| p.as_str().to_owned()).collect();
    let keys: Vec<String> = distinct.into_iter().collect();
    let dynamo = ctx.dynamo().await;
    let items = batch_get(&dynamo, &ctx.global.consent_table, "phone", &keys, &["phone", "last_inbound_at"]).await?;
    let open = items
        .iter()
        .filter(|item| text(item, "phone").is_some() && is_open(number(item, "last_inbound_at"), now, MARGIN_SECONDS))
        .count();
    Ok((keys.len() - open, keys.len()))
}

/// The warning's words, or `None` when every window is open.
pub fn warning(closed: usize, total: usize) -> Option<String> {
    (closed > 0).then(|| {
        format!(
            "{closed} of {total} parent(s) have not written to the school within the last 24 hours: WhatsApp \
             refuses free text to them (63016, `undelivered`). Add --fallback-template HX… (with its --var's) to \
             send them an approved template instead"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::warning;

    #[test]
    fn the_warning_says_how_many() {
        assert_eq!(warning(0, 3), None);
        assert!(warning(2, 3).unwrap().starts_with("2 of 3 parent(s)"));
    }
}
