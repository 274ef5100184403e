//! A parent's reply that is not a consent keyword (DESIGN.md, "Conversations"): it opens the
//! parent's 24-hour window, is attributed to the message of ours it answers, acknowledges that
//! message when it is an `ack:<word>` button, is kept once in the Inbox, and staff are told.

use std::sync::Arc;

use sha1::{Digest, Sha1};
use tracing::{error, info, warn};

use super::{param, WebhookHandler, WebhookResponse};
use crate::domain::inbox::{ack_word, answered, sort_key, InboxItem, ATTRIBUTION_ITEMS};
use crate::domain::phone::{mask_phone, PhoneNumber};
use crate::metrics::Metrics;
use crate::ports::{Inbox, Notifier, StoreError};

/// At most this many media URLs are kept (Twilio sends at most 10).
const MAX_MEDIA: u32 = 10;
/// A body longer than this is kept cut, with a mark (Twilio's own limit is 1,600).
pub const MAX_BODY_CHARS: usize = 16_384;
/// The notice quotes the reply's first characters.
pub const NOTICE_QUOTE_CHARS: usize = 200;

/// What the webhook needs for the replies (`INBOX_TABLE`, `REPLIES_TOPIC_ARN`,
/// `AUTO_REPLY_TEXT`, `RETENTION_DAYS`).
#[derive(Clone)]
pub struct Conversations {
    pub inbox: Arc<dyn Inbox>,
    pub notifier: Option<Arc<dyn Notifier>>,
    pub auto_reply_text: Option<String>,
    pub retention_days: i64,
}

/// A reply's `MessageSid`, or, when Twilio sent none, a stable stand-in made from the form
/// (so that a replay is still recognised).
fn reply_sid(params: &[(String, String)]) -> String {
    if let Some(sid) = param(params, "MessageSid").or_else(|| param(params, "SmsSid")) {
        return sid.to_owned();
    }
    let mut hasher = Sha1::new();
    for (key, value) in params {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    let digest: String = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    format!("nosid-{digest}")
}

/// The body as kept: at most [`MAX_BODY_CHARS`] characters, a cut one marked as such.
fn kept_body(body: &str) -> String {
    if body.chars().count() <= MAX_BODY_CHARS {
        return body.to_owned();
    }
    let mut kept: String = body.chars().take(MAX_BODY_CHARS).collect();
    kept.push_str(" […cut]");
    kept
}

/// Twilio's `NumMedia` and `MediaUrl0…`: the count as given (0 when unreadable) and the URLs
/// present.
fn media(params: &[(String, String)]) -> (u32, Vec<String>) {
    let count = param(params, "NumMedia").and_then(|n| n.trim().parse::<u32>().ok()).unwrap_or(0);
    let urls =
        (0..count.min(MAX_MEDIA)).filter_map(|i| param(params, &format!("MediaUrl{i}")).map(str::to_owned)).collect();
    (count, urls)
}

/// One line of text: control characters (new lines included) become spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The notice staff get: masked phone, campaign, the reply's first 200 characters, and the
/// command that shows it all.
pub fn notice(item: &InboxItem) -> (String, String) {
    let masked = mask_phone(&item.phone);
    let campaign = item.campaign.as_deref().unwrap_or("(none)");
    let subject = format!("Missive: reply from {masked} (campaign {campaign})");
    let text = item.button_text.as_deref().or(item.body.as_deref()).unwrap_or_default();
    let mut quote: String = one_line(text).chars().take(NOTICE_QUOTE_CHARS).collect();
    if text.chars().count() > NOTICE_QUOTE_CHARS {
        quote.push('…');
    }
    let mut message = format!("A parent ({masked}) replied");
    if let Some(campaign) = &item.campaign {
        message.push_str(&format!(" to campaign {campaign}"));
    }
    message.push_str(&format!(":\n\n{quote}\n"));
    if item.num_media > 0 {
        message.push_str(&format!("\n({} attachment(s))\n", item.num_media));
    }
    if let Some(ack) = &item.ack {
        message.push_str(&format!("\nAnswer: {ack}\n"));
    }
    // The phone stays masked in a mail: the command names the campaign, or asks for the number.
    match &item.campaign {
        Some(campaign) => message.push_str(&format!("\nTo read it: missive replies --campaign {campaign}\n")),
        None => message.push_str(&format!("\nTo read it: missive replies --phone <the full number of {masked}>\n")),
    }
    (subject, message)
}

impl WebhookHandler {
    /// `POST /twilio/inbound` for a message that is not a keyword. Only called after the
    /// signature held.
    pub(super) async fn reply(
        &self,
        conversations: &Conversations,
        params: &[(String, String)],
        metrics: &Metrics,
    ) -> Result<WebhookResponse, StoreError> {
        let answer = WebhookResponse::twiml(conversations.auto_reply_text.as_deref());
        let from = param(params, "From");
        let sid = reply_sid(params);
        let Some(phone) = from.and_then(|raw| PhoneNumber::parse(raw).ok()) else {
            metrics.count("ReplyUnusableSender");
            warn!(twilio_sid = %sid, phone = ?from.map(mask_phone), "reply from an unusable number: not kept (no phone to key it by)");
            return Ok(answer);
        };
        let now = self.clock.now();
        // A replayed webhook: already kept (one Query of the phone's replies; their number is small).
        if conversations
            .inbox
            .for_phone(phone.as_str())
            .await?
            .iter()
            .any(|item| item.received_at_sid.ends_with(&format!("#{sid}")))
        {
            metrics.count("ReplyDuplicate");
            info!(phone = %phone, twilio_sid = %sid, "reply already kept: a replayed webhook");
            return Ok(answer);
        }
        self.consent.record_inbound(&phone, now).await?;

        let replied_to_sid = param(params, "OriginalRepliedMessageSid").map(str::to_owned);
        let recent = self.log.recent_for_phone(phone.as_str(), ATTRIBUTION_ITEMS).await?;
        let answered = answered(&recent, replied_to_sid.as_deref(), now);
        let campaign = match answered {
            Some(item) => self.log.campaign_of(&item.message_id).await?,
            None => None,
        };
        if replied_to_sid.is_some() && answered.is_none_or(|item| item.twilio_sid != replied_to_sid) {
            warn!(phone = %phone, twilio_sid = %sid, replied_to_sid = ?replied_to_sid, "OriginalRepliedMessageSid names none of the phone's recent messages: attributed by recency");
        }

        let button_payload = param(params, "ButtonPayload").map(str::to_owned);
        let ack = button_payload.as_deref().and_then(ack_word);
        if button_payload.as_deref().is_some_and(|p| p.starts_with("ack:")) && ack.is_none() {
            warn!(phone = %phone, twilio_sid = %sid, "ack: payload without a usable word: kept as a reply, no acknowledgement");
        }
        if let (Some(word), Some(item)) = (&ack, answered) {
            if self.log.record_ack(&item.message_id, word, now).await? {
                metrics.count("Acknowledged");
                info!(phone = %phone, message_id = %item.message_id, ack = %word, "acknowledgement recorded");
            } else {
                info!(phone = %phone, message_id = %item.message_id, ack = %word, "acknowledgement older than the one recorded: kept as a reply only");
            }
        }

        let (num_media, media_urls) = media(params);
        let item = InboxItem {
            phone: phone.as_str().to_owned(),
            received_at_sid: sort_key(now, &sid),
            received_at: now,
            body: param(params, "Body").map(kept_body),
            profile_name: param(params, "ProfileName").map(str::to_owned),
            num_media,
            media_urls,
            button_payload,
            button_text: param(params, "ButtonText").map(str::to_owned),
            replied_to_sid,
            message_id: answered.map(|item| item.message_id.clone()),
            campaign,
            ack,
            expires_at: now + conversations.retention_days * 86_400,
        };
        if !conversations.inbox.put_once(&item).await? {
            metrics.count("ReplyDuplicate");
            return Ok(answer);
        }
        metrics.count("Reply");
        info!(phone = %phone, twilio_sid = %sid, campaign = ?item.campaign, message_id = ?item.message_id, num_media, "reply kept");
        if let Some(notifier) = &conversations.notifier {
            let (subject, message) = notice(&item);
            // The reply is kept: a failed notice must not make Twilio post it again.
            if let Err(err) = notifier.notify(&subject, &message).await {
                metrics.count("ReplyNoticeFailed");
                error!(phone = %phone, error = %err, "the staff's notice could not be published");
            }
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn media_urls_follow_num_media_and_a_bad_count_is_none() {
        let p = params(&[("NumMedia", "2"), ("MediaUrl0", "https://a/0"), ("MediaUrl1", "https://a/1")]);
        assert_eq!(media(&p), (2, vec!["https://a/0".to_owned(), "https://a/1".to_owned()]));
        assert_eq!(media(&params(&[("NumMedia", "x"), ("MediaUrl0", "u")])), (0, vec![]));
    }

    #[test]
    fn a_missing_sid_gets_a_stable_stand_in() {
        let p = params(&[("From", "whatsapp:+33612345678"), ("Body", "hi")]);
        assert_eq!(reply_sid(&p), reply_sid(&p));
        assert!(reply_sid(&p).starts_with("nosid-"));
        assert_ne!(reply_sid(&p), reply_sid(&params(&[("Body", "ho")])));
        assert_eq!(reply_sid(&params(&[("MessageSid", "SM1")])), "SM1");
    }

    #[test]
    fn a_long_body_is_cut_with_a_mark_and_the_notice_quotes_200_characters_on_one_line() {
        let long = "é".repeat(MAX_BODY_CHARS + 5);
        assert!(kept_body(&long).ends_with("[…cut]"));
        assert_eq!(kept_body("short"), "short");
        let item = InboxItem {
            phone: "+33612345678".into(),
            received_at_sid: sort_key(1, "SM1"),
            received_at: 1,
            body: Some(format!("line1\nline2\u{7}{}", "x".repeat(300))),
            profile_name: None,
            num_media: 0,
            media_urls: vec![],
            button_payload: None,
            button_text: None,
            replied_to_sid: None,
            message_id: None,
            campaign: Some("trip".into()),
            ack: None,
            expires_at: 2,
        };
        let (subject, message) = notice(&item);
        assert!(!subject.contains("12345678") && !message.contains("12345678"), "{subject} {message}");
        assert!(message.contains("line1 line2 x"), "{message}");
        assert!(message.contains("missive replies --campaign trip"));
        let quote = message.lines().find(|l| l.starts_with("line1")).unwrap();
        assert_eq!(quote.chars().count(), NOTICE_QUOTE_CHARS + 1);
    }
}
