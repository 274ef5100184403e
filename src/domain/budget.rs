//! The daily budget of distinct parents (DESIGN.md, "Schedule, quiet hours and the daily
//! budget"): Meta caps how many distinct parents a WhatsApp Business portfolio may message
//! outside their 24-hour window per rolling 24 hours. `send` keeps count in hourly items of
//! the Campaigns table (`#budget:<yyyy-mm-ddThh>`, UTC hours), reads the last 24 hours' once
//! per batch, and holds a normal message when only the reserve is left.

use std::collections::{BTreeMap, HashSet};

use super::message::Priority;

/// Phones per hourly item before the hour is split by a hash of the phone: DynamoDB's items
/// hold at most 400 KB.
pub const PHONES_PER_ITEM: u32 = 20_000;
/// An hourly item expires 25 hours after its hour began.
pub const BUDGET_TTL_SECONDS: i64 = 25 * 3600;
/// The prefix of budget items' `campaign` key (no campaign name starts with `#`).
pub const BUDGET_KEY_PREFIX: &str = "#budget:";

/// `DAILY_RECIPIENT_LIMIT` and `URGENT_RESERVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyBudget {
    pub limit: u32,
    /// Left to urgent messages (default 10 % of the limit).
    pub reserve: u32,
}

impl DailyBudget {
    /// The limit with its reserve, or why not (the reserve must leave room for normal
    /// messages).
    pub fn new(limit: u32, reserve: Option<u32>) -> Result<Self, String> {
        if limit == 0 {
            return Err("DAILY_RECIPIENT_LIMIT: must be at least 1 (leave it empty for no budget)".into());
        }
        let reserve = reserve.unwrap_or(limit / 10);
        if reserve >= limit {
            return Err(format!("URGENT_RESERVE: {reserve} leaves nothing of the limit {limit} to normal messages"));
        }
        Ok(DailyBudget { limit, reserve })
    }

    /// How many items each hour is split into.
    pub fn parts(&self) -> u32 {
        self.limit.div_ceil(PHONES_PER_ITEM).max(1)
    }

    /// The most distinct parents a message of `priority` may bring the window to.
    fn cap(&self, priority: Priority) -> u32 {
        match priority {
            Priority::Urgent => self.limit,
            Priority::Normal => self.limit - self.reserve,
        }
    }
}

/// The start of the UTC hour `at` falls in.
pub fn hour_of(at: i64) -> i64 {
    at.div_euclid(3600) * 3600
}

/// The key of the budget item of `hour` that holds `phone`.
pub fn item_key(hour: i64, phone: &str, budget: &DailyBudget) -> String {
    let stamp = chrono::DateTime::from_timestamp(hour, 0)
        .map_or_else(|| hour.to_string(), |t| t.format("%Y-%m-%dT%H").to_string());
    match budget.parts() {
        1 => format!("{BUDGET_KEY_PREFIX}{stamp}"),
        parts => format!("{BUDGET_KEY_PREFIX}{stamp}:{}", fnv(phone) % parts),
    }
}

/// Every budget item key of the 24 hours ending with `now`'s: what one batch reads.
pub fn window_keys(now: i64, budget: &DailyBudget) -> Vec<(i64, String)> {
    let current = hour_of(now);
    let mut keys = Vec::new();
    for back in 0..24 {
        let hour = current - back * 3600;
        let stamp = chrono::DateTime::from_timestamp(hour, 0)
            .map_or_else(|| hour.to_string(), |t| t.format("%Y-%m-%dT%H").to_string());
        match budget.parts() {
            1 => keys.push((hour, format!("{BUDGET_KEY_PREFIX}{stamp}"))),
            parts => keys.extend((0..parts).map(|part| (hour, format!("{BUDGET_KEY_PREFIX}{stamp}:{part}")))),
        }
    }
    keys
}

fn fnv(text: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The phones messaged outside their window, by hour, over the last 24 hours: what the batch
/// read, plus what it added since.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetWindow {
    hours: BTreeMap<i64, HashSet<String>>,
}

/// What the budget says of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetCheck {
    /// It may go; the phone is added to the hour's item before the create.
    Go,
    /// Only the reserve (or nothing) is left: wait until this hour, when enough of the window
    /// has rolled off.
    HoldUntil(i64),
}

impl BudgetWindow {
    /// Adds the phones of an hour's item (or part of one).
    pub fn add_hour(&mut self, hour: i64, phones: impl IntoIterator<Item = String>) {
        self.hours.entry(hour_of(hour)).or_default().extend(phones);
    }

    /// Counts `phone` in the hour of `now` (once the decision to send is made).
    pub fn record(&mut self, phone: &str, now: i64) {
        self.hours.entry(hour_of(now)).or_default().insert(phone.to_owned());
    }

    /// Distinct phones over the hours `[from, to]` (none when `from` is after `to`).
    fn distinct(&self, from: i64, to: i64) -> HashSet<&str> {
        if from > to {
            return HashSet::new();
        }
        self.hours.range(from..=to).flat_map(|(_, phones)| phones.iter().map(String::as_str)).collect()
    }

    /// Whether a message of `priority` to `phone` may go at `now`. A parent already counted
    /// in the window costs nothing more.
    pub fn check(&self, phone: &str, priority: Priority, budget: &DailyBudget, now: i64) -> BudgetCheck {
        let current = hour_of(now);
        let window_start = current - 23 * 3600;
        let counted = self.distinct(window_start, current);
        let cap = budget.cap(priority) as usize;
        if counted.contains(phone) || counted.len() < cap {
            return BudgetCheck::Go;
        }
        // The first later hour whose window (its own 24 hours) holds fewer than the cap of
        // what is counted now.
        for ahead in 1..=24 {
            let start = window_start + ahead * 3600;
            if self.distinct(start, current).len() < cap {
                return BudgetCheck::HoldUntil(current + ahead * 3600);
            }
        }
        BudgetCheck::HoldUntil(current + 24 * 3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_367_600 + 1800; // 2026-12-04 07:30 UTC

    #[test]
    fn the_limit_keeps_its_reserve() {
        assert_eq!(DailyBudget::new(250, None).unwrap(), DailyBudget { limit: 250, reserve: 25 });
        assert_eq!(DailyBudget::new(5, Some(1)).unwrap().reserve, 1);
        assert!(DailyBudget::new(5, Some(5)).is_err());
        assert!(DailyBudget::new(0, None).is_err());
    }

    #[test]
    fn keys_name_the_utc_hour_and_split_large_tiers() {
        let small = DailyBudget::new(250, None).unwrap();
        assert_eq!(item_key(hour_of(NOW), "+33612345678", &small), "#budget:2026-12-04T07");
        assert_eq!(window_keys(NOW, &small).len(), 24);
        assert_eq!(window_keys(NOW, &small)[23].1, "#budget:2026-12-03T08");
        let large = DailyBudget::new(100_000, None).unwrap();
        assert_eq!(large.parts(), 5);
        assert_eq!(window_keys(NOW, &large).len(), 120);
        let key = item_key(hour_of(NOW), "+33612345678", &large);
        assert!(key.starts_with("#budget:2026-12-04T07:") && window_keys(NOW, &large).iter().any(|(_, k)| *k == key));
    }

    #[test]
    fn the_fifth_normal_parent_waits_and_an_urgent_one_goes() {
        let budget = DailyBudget::new(5, Some(1)).unwrap();
        let mut window = BudgetWindow::default();
        // Four parents messaged, three hours ago and now.
        window.add_hour(NOW - 3 * 3600, ["+1".to_owned(), "+2".to_owned()]);
        window.add_hour(NOW, ["+3".to_owned(), "+4".to_owned()]);
        assert_eq!(window.check("+3", Priority::Normal, &budget, NOW), BudgetCheck::Go, "already counted");
        // Four of 5 counted, reserve 1: a fifth normal parent would use the reserve.
        let held = window.check("+5", Priority::Normal, &budget, NOW);
        assert_eq!(held, BudgetCheck::HoldUntil(hour_of(NOW) + 21 * 3600), "when the two of 3 h ago roll off");
        assert_eq!(window.check("+5", Priority::Urgent, &budget, NOW), BudgetCheck::Go);
        window.record("+5", NOW);
        assert!(
            matches!(window.check("+6", Priority::Urgent, &budget, NOW), BudgetCheck::HoldUntil(_)),
            "the limit itself"
        );
        // A limit of one, counted: the next parent waits a whole day, without a panic.
        let single = DailyBudget::new(1, Some(0)).unwrap();
        let mut one = BudgetWindow::default();
        one.record("+1", NOW);
        assert_eq!(one.check("+2", Priority::Normal, &single, NOW), BudgetCheck::HoldUntil(hour_of(NOW) + 24 * 3600));
        // A day later the window is empty again.
        assert_eq!(window.check("+6", Priority::Normal, &budget, NOW + 24 * 3600), BudgetCheck::Go);
    }
}
