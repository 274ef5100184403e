//! `POST /twilio/inbound`: a parent's message. Opt-out and opt-in keywords (and Twilio's
//! Advanced Opt-Out `OptOutType`) change consent; HELP is answered; any other message is a
//! reply ([`super::conversation`]).

use tracing::{debug, info, warn};

use super::{param, WebhookHandler, WebhookResponse, HELP_REPLY, OPT_IN_REPLY, OPT_OUT_REPLY};
use crate::domain::consent::{keyword, opt_out_type, ConsentChange, ConsentSource, ConsentState, Keyword};
use crate::domain::phone::{mask_phone, PhoneNumber};
use crate::metrics::Metrics;
use crate::ports::StoreError;

impl WebhookHandler {
    /// `POST /twilio/inbound`
    pub(super) async fn inbound(
        &self,
        params: &[(String, String)],
        metrics: &Metrics,
    ) -> Result<WebhookResponse, StoreError> {
        let sid = param(params, "MessageSid").or_else(|| param(params, "SmsSid"));
        let from = param(params, "From");
        let asked = match param(params, "OptOutType").and_then(opt_out_type) {
            Some(keyword) => Some(keyword),
            None => keyword(param(params, "Body").unwrap_or_default()),
        };
        let Some(asked) = asked else {
            return match &self.conversations {
                Some(conversations) => self.reply(conversations, params, metrics).await,
                None => {
                    debug!(twilio_sid = ?sid, phone = ?from.map(mask_phone), "inbound message without a keyword (no Inbox configured)");
                    Ok(WebhookResponse::twiml(None))
                }
            };
        };
        let phone = from.and_then(|raw| PhoneNumber::parse(raw).ok());
        let now = self.clock.now();
        // A keyword is a message from the parent too: it opens their 24-hour window (DESIGN.md,
        // "Conversations": every inbound message's time), without a consent history entry.
        if let Some(phone) = &phone {
            self.consent.record_inbound(phone, now).await?;
        }
        if asked == Keyword::Help {
            info!(twilio_sid = ?sid, phone = ?from.map(mask_phone), "HELP answered");
            return Ok(WebhookResponse::twiml(Some(HELP_REPLY)));
        }
        let Some(phone) = phone else {
            warn!(twilio_sid = ?sid, phone = ?from.map(mask_phone), "consent keyword from an unusable number: nothing recorded");
            return Ok(WebhookResponse::twiml(None));
        };
        let (state, reply, metric) = match asked {
            Keyword::OptOut => (ConsentState::OptedOut, OPT_OUT_REPLY, "OptOut"),
            _ => (ConsentState::OptedIn, OPT_IN_REPLY, "OptIn"),
        };
        let evidence = sid.unwrap_or("inbound message without MessageSid");
        let change = ConsentChange { state, source: ConsentSource::WhatsappReply, has_evidence: true };
        if self.consent.change(&phone, change, evidence, now).await? {
            metrics.count(metric);
            info!(phone = %phone, twilio_sid = ?sid, state = state.as_str(), source = "whatsapp-reply", "consent recorded");
            Ok(WebhookResponse::twiml(Some(reply)))
        } else {
            // Only an erasure refuses a parent's keyword: the parent stays suppressed either way.
            warn!(phone = %phone, twilio_sid = ?sid, state = state.as_str(), "consent change refused by the precedence rules (an erasure): nothing recorded");
            Ok(WebhookResponse::twiml(None))
        }
    }
}
