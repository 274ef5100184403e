//! Whether a valid message may go now (DESIGN.md, step 2, "Campaigns", "Schedule, quiet hours
//! and the daily budget", "Conversations"), decided without I/O from what the handler read:
//! the message's campaign (read once per batch), the phone's Consent item (one read), the
//! school's calendar and the budget's window.
//!
//! In order: a `not_before` beyond 35 days is `rejected`; a cancelled campaign `cancelled`;
//! `not_after` passed `expired`; consent missing or withdrawn `skipped`; then `not_before`
//! and quiet hours hold it (`scheduled`, or `expired` at once when `not_after` comes first);
//! then the daily budget may hold it (outside the parent's window only). What goes goes as its
//! body or its fallback template, by the parent's 24-hour window.

use super::budget::{BudgetCheck, BudgetWindow, DailyBudget};
use super::campaign::CampaignItem;
use super::consent::{refusal, ConsentItem, ConsentPolicy, CurrentConsent};
use super::item::ContentKind;
use super::message::{Content, QueueMessage};
use super::outcome::EarlyFinal;
use super::policy::SendPolicy;
use super::schedule::{describe_local, stable_unit, time_hold, Hold, HoldReason, SchoolCalendar, MAX_SCHEDULE_SECONDS};
use super::window::{content_to_send, is_open};

/// A refusal: the final status and its reason (`last_error`).
pub type Refusal = (EarlyFinal, String);

/// A message that may go now, as `content`.
#[derive(Debug, Clone, PartialEq)]
pub struct Go {
    pub content: Content,
    pub content_kind: ContentKind,
    /// The parent's 24-hour window is closed: the message counts in the daily budget.
    pub outside_window: bool,
}

/// What becomes of a message that passed the checks made before its consent is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// A final status with its reason; never sent.
    Refuse(Refusal),
    /// Not yet: `scheduled` until `hold.until`.
    Hold(Hold),
    /// It may go now.
    Go(Go),
}

/// The checks that need no read of the phone: how far ahead it is scheduled, its campaign,
/// its expiry. `campaign`: the campaign's item when the message has one and it exists.
pub fn before_consent(message: &QueueMessage, campaign: Option<&CampaignItem>, now: i64) -> Option<Refusal> {
    if message.not_before.is_some_and(|at| at > now + MAX_SCHEDULE_SECONDS) {
        return Some((EarlyFinal::Rejected, "not_before: more than 35 days ahead".to_owned()));
    }
    if let Some(campaign) = campaign.filter(|c| c.is_cancelled()) {
        return Some((EarlyFinal::Cancelled, campaign.cancel_note()));
    }
    expiry_refusal(message, now)
}

/// `expired` when `not_after` has passed.
pub fn expiry_refusal(message: &QueueMessage, now: i64) -> Option<Refusal> {
    message
        .not_after
        .is_some_and(|not_after| not_after <= now)
        .then(|| (EarlyFinal::Expired, "not_after passed before it could be sent".to_owned()))
}

/// `skipped` when consent is missing (under `require-optin`) or the parent opted out.
pub fn consent_refusal(policy: ConsentPolicy, consent: Option<CurrentConsent>) -> Option<Refusal> {
    refusal(policy, consent).map(|reason| (EarlyFinal::Skipped, reason.to_owned()))
}

/// The checks after the phone's Consent item was read: consent, the time holds, the content
/// the window allows. (The daily budget is [`budget_hold`], checked by the caller under the
/// batch's lock on its window.)
pub fn admit(
    message: &QueueMessage,
    consent: Option<&ConsentItem>,
    policy: &SendPolicy,
    calendar: &SchoolCalendar,
    now: i64,
) -> Admission {
    if let Some(refusal) = consent_refusal(policy.consent_policy, consent.and_then(ConsentItem::current)) {
        return Admission::Refuse(refusal);
    }
    if let Some(hold) = time_hold(message, calendar, now, stable_unit(message.message_id.as_str())) {
        return hold_or_expire(message, hold, calendar);
    }
    Admission::Go(by_window(message, consent, policy, now))
}

/// [`admit`] without the holds, for a reconcile's new attempt: the message was allowed to go
/// when it was first attempted, and the attempt in doubt may already have reached the parent.
pub fn admit_unheld(
    message: &QueueMessage,
    consent: Option<&ConsentItem>,
    policy: &SendPolicy,
    now: i64,
) -> Result<Go, Refusal> {
    match consent_refusal(policy.consent_policy, consent.and_then(ConsentItem::current)) {
        Some(refusal) => Err(refusal),
        None => Ok(by_window(message, consent, policy, now)),
    }
}

/// The content the parent's window allows.
fn by_window(message: &QueueMessage, consent: Option<&ConsentItem>, policy: &SendPolicy, now: i64) -> Go {
    let window_open = is_open(consent.and_then(|c| c.last_inbound_at), now, policy.window_margin_seconds);
    let (content, content_kind) = content_to_send(message, window_open);
    Go { content, content_kind, outside_window: !window_open }
}

/// The daily budget's word on a message going outside the parent's window: `None` to go (the
/// caller then counts the phone in `window`), or the hold (or expiry) when only the reserve
/// is left.
pub fn budget_hold(
    message: &QueueMessage,
    window: &BudgetWindow,
    budget: &DailyBudget,
    calendar: &SchoolCalendar,
    now: i64,
) -> Option<Admission> {
    match window.check(message.to.as_str(), message.priority, budget, now) {
        BudgetCheck::Go => None,
        BudgetCheck::HoldUntil(until) => {
            Some(hold_or_expire(message, Hold { until, reason: HoldReason::Budget }, calendar))
        }
    }
}

/// A hold, unless `not_after` comes before its end: then `expired` at once.
fn hold_or_expire(message: &QueueMessage, hold: Hold, calendar: &SchoolCalendar) -> Admission {
    match message.not_after {
        Some(not_after) if not_after <= hold.until => Admission::Refuse((
            EarlyFinal::Expired,
            format!(
                "not_after passes before it may go ({} until {})",
                hold.reason.as_str(),
                describe_local(calendar.timezone, hold.until)
            ),
        )),
        _ => Admission::Hold(hold),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{CampaignState, HISTORY_LIMIT};
    use crate::domain::schedule::{QuietDays, QuietHours};

    const NOW: i64 = 1_796_367_600; // 2026-12-04 08:00 Paris

    fn message(extra: serde_json::Value) -> QueueMessage {
        let mut body = serde_json::json!({"v": 1, "message_id": "trip:p-1", "to": "+33612345678", "body": "Bonjour"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        QueueMessage::parse(&body.to_string()).unwrap()
    }

    fn opted_in(last_inbound_at: Option<i64>) -> ConsentItem {
        ConsentItem {
            phone: "+33612345678".into(),
            state: Some("opted_in".into()),
            updated_at: Some(NOW - 86_400),
            source: Some("cli".into()),
            evidence: Some("form".into()),
            history: Vec::new(),
            last_inbound_at,
        }
    }

    fn campaign(state: CampaignState) -> CampaignItem {
        CampaignItem {
            campaign: "trip".into(),
            state,
            created_at: NOW - 3600,
            created_by: "secretary".into(),
            description: None,
            enqueued: 30,
            cancelled_at: Some(NOW - 60),
            cancelled_by: Some("head".into()),
            cancel_reason: Some("wrong date".into()),
            history: Vec::with_capacity(HISTORY_LIMIT),
        }
    }

    fn night_calendar() -> SchoolCalendar {
        SchoolCalendar {
            quiet_hours: Some(QuietHours::parse("20:00-07:30").unwrap()),
            quiet_days: QuietDays::default(),
            spread_seconds: 0,
            ..SchoolCalendar::default()
        }
    }

    #[test]
    fn the_checks_before_consent_in_their_order() {
        let far =
            message(serde_json::json!({"not_before": "2027-01-20T08:00:00Z", "not_after": "2020-01-01T00:00:00Z"}));
        assert_eq!(
            before_consent(&far, None, NOW),
            Some((EarlyFinal::Rejected, "not_before: more than 35 days ahead".into()))
        );
        let expired = message(serde_json::json!({"not_after": "2020-01-01T00:00:00Z"}));
        assert_eq!(
            before_consent(&expired, Some(&campaign(CampaignState::Cancelled)), NOW),
            Some((EarlyFinal::Cancelled, "campaign trip cancelled by head: wrong date".into()))
        );
        assert_eq!(
            before_consent(&expired, Some(&campaign(CampaignState::Active)), NOW).map(|r| r.0),
            Some(EarlyFinal::Expired)
        );
        let soon = message(serde_json::json!({"not_before": "2027-01-07T08:00:00+01:00"}));
        assert_eq!(before_consent(&soon, None, NOW), None, "34 days ahead is allowed");
    }

    #[test]
    fn consent_then_quiet_hours_then_the_window() {
        let policy = SendPolicy::default();
        let day = SchoolCalendar::default();
        assert_eq!(
            admit(&message(serde_json::json!({})), None, &policy, &day, NOW),
            Admission::Refuse((EarlyFinal::Skipped, "no consent on record".into()))
        );
        let night = NOW - 10 * 3600; // 22:00 the evening before
        let held = admit(&message(serde_json::json!({})), Some(&opted_in(None)), &policy, &night_calendar(), night);
        assert_eq!(held, Admission::Hold(Hold { until: NOW - 1800, reason: HoldReason::QuietHours }));
        let late = message(serde_json::json!({"not_after": "2026-12-04T05:00:00Z"}));
        assert!(matches!(
            admit(&late, Some(&opted_in(None)), &policy, &night_calendar(), night),
            Admission::Refuse((EarlyFinal::Expired, ref reason)) if reason == "not_after passes before it may go (quiet_hours until 2026-12-04 07:30 CET)"
        ));
        let fallback =
            message(serde_json::json!({"fallback_template": {"content_sid": "HX0123456789abcdef0123456789abcdef"}}));
        let open = admit(&fallback, Some(&opted_in(Some(NOW - 3600))), &policy, &day, NOW);
        assert!(matches!(open, Admission::Go(Go { content_kind: ContentKind::Body, outside_window: false, .. })));
        let closed = admit(&fallback, Some(&opted_in(Some(NOW - 25 * 3600))), &policy, &day, NOW);
        assert!(matches!(closed, Admission::Go(Go { content_kind: ContentKind::Template, outside_window: true, .. })));
        let night = NOW - 10 * 3600;
        assert!(admit_unheld(&fallback, Some(&opted_in(None)), &policy, night).is_ok(), "no hold on a new attempt");
        assert!(admit_unheld(&fallback, None, &policy, night).is_err());
    }

    #[test]
    fn the_budget_holds_a_normal_message_and_lets_an_urgent_one_go() {
        let budget = DailyBudget::new(5, Some(1)).unwrap();
        let mut window = BudgetWindow::default();
        window.add_hour(NOW, (1..=4).map(|i| format!("+3361234560{i}")));
        let calendar = SchoolCalendar::default();
        let normal = message(serde_json::json!({}));
        assert!(matches!(
            budget_hold(&normal, &window, &budget, &calendar, NOW),
            Some(Admission::Hold(Hold { reason: HoldReason::Budget, .. }))
        ));
        let urgent = message(serde_json::json!({"priority": "urgent"}));
        assert_eq!(budget_hold(&urgent, &window, &budget, &calendar, NOW), None);
    }
}
