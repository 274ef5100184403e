//! `POST /twilio/status?message_id=…`: Twilio's report on a message we sent, applied
//! forward-only to its MessageLog item (DESIGN.md, "Status callback").

use tracing::{debug, error, info, warn};

use super::{param, WebhookHandler, WebhookRequest, WebhookResponse};
use crate::domain::consent::{ConsentChange, ConsentSource, ConsentState};
use crate::domain::item::LogItem;
use crate::domain::message::MessageId;
use crate::domain::phone::{mask_phone, PhoneNumber};
use crate::domain::status::{status_for_twilio, twilio_rank, Status};
use crate::domain::twilio::{codes, error_description};
use crate::metrics::Metrics;
use crate::ports::{CallbackWrite, StatusReport, StoreError};

/// `last_error`'s words for a body sent outside the parent's 24-hour window (63016).
pub const OUTSIDE_WINDOW_WORDS: &str = "outside the 24-hour window: send a template";

impl WebhookHandler {
    /// `POST /twilio/status?message_id=…`
    pub(super) async fn status_callback(
        &self,
        request: &WebhookRequest,
        params: &[(String, String)],
        metrics: &Metrics,
    ) -> Result<WebhookResponse, StoreError> {
        let sid = param(params, "MessageSid").or_else(|| param(params, "SmsSid"));
        let twilio_status = param(params, "MessageStatus").or_else(|| param(params, "SmsStatus"));
        let message_id = url::form_urlencoded::parse(request.raw_query.as_bytes())
            .find(|(name, _)| name == "message_id")
            .map(|(_, value)| value.into_owned());
        let Some(message_id) = message_id else {
            info!(twilio_sid = ?sid, twilio_status = ?twilio_status, "status callback without message_id: not a message Missive sent; nothing written");
            return Ok(WebhookResponse::ok_empty());
        };
        let message_id = match MessageId::parse(&message_id) {
            Ok(id) => id,
            Err(reason) => {
                warn!(twilio_sid = ?sid, reason = %reason, "status callback with an unusable message_id: nothing written");
                return Ok(WebhookResponse::ok_empty());
            }
        };
        let (Some(sid), Some(twilio_status)) = (sid, twilio_status) else {
            warn!(message_id = %message_id, "status callback without MessageSid or MessageStatus: nothing written");
            return Ok(WebhookResponse::ok_empty());
        };
        let (Some(rank), Some(status)) = (twilio_rank(twilio_status), status_for_twilio(twilio_status)) else {
            info!(message_id = %message_id, twilio_sid = sid, twilio_status, "a Twilio status outside the outbound lifecycle: ignored");
            return Ok(WebhookResponse::ok_empty());
        };
        let error_code = param(params, "ErrorCode").and_then(|code| code.trim().parse::<u32>().ok());
        let last_error = (status == Status::Undelivered).then(|| {
            // 63016 says what to do (DESIGN.md, "Conversations"), whatever Twilio's words.
            let description = if error_code == Some(codes::OUTSIDE_WINDOW) {
                Some(OUTSIDE_WINDOW_WORDS)
            } else {
                param(params, "ErrorMessage").or_else(|| error_description(error_code?))
            };
            match (error_code, description) {
                (Some(code), Some(text)) => format!("{code}: {text}"),
                (Some(code), None) => format!("{code}: Twilio reported {twilio_status}"),
                (None, _) => format!("Twilio reported {twilio_status}"),
            }
        });
        let now = self.clock.now();
        let report = StatusReport {
            sid: sid.to_owned(),
            twilio_status: twilio_status.to_owned(),
            rank,
            status,
            error_code: if status == Status::Undelivered { error_code } else { None },
            last_error,
            now,
        };
        let existing = match self.log.apply_status(message_id.as_str(), &report).await? {
            CallbackWrite::Applied(before) => {
                self.on_applied(&message_id, &report, &before, metrics);
                before
            }
            CallbackWrite::Refused(None) => {
                warn!(message_id = %message_id, twilio_sid = sid, twilio_status, "status callback for a message_id with no MessageLog item: nothing written");
                return Ok(WebhookResponse::ok_empty());
            }
            CallbackWrite::Refused(Some(old)) => {
                self.on_refused(&message_id, &report, &old, metrics).await?;
                old
            }
        };
        // 21610 records an opt-out on the refused path too: a refused write may be Twilio's
        // retry of a report whose consent write failed. A replay (or a late copy) of a report
        // already recorded must change nothing, even after the parent's START: the Consent
        // store refuses an opt-out whose MessageSid its history already holds
        // (`domain::consent::repeats_history`).
        if error_code == Some(codes::UNSUBSCRIBED) && existing.status.is_none_or(Status::accepts_callback) {
            let phone = existing.phone.as_deref().or_else(|| param(params, "To"));
            self.record_unsubscribed(&message_id, phone, sid, now, metrics).await?;
        }
        Ok(WebhookResponse::ok_empty())
    }

    fn on_applied(&self, message_id: &MessageId, report: &StatusReport, before: &LogItem, metrics: &Metrics) {
        match report.status {
            Status::Delivered => metrics.count("Delivered"),
            Status::Read => metrics.count("Read"),
            Status::Undelivered => metrics.count("Undelivered"),
            _ => {}
        }
        let previous = before.status.map(Status::as_str).unwrap_or("none");
        info!(
            message_id = %message_id,
            twilio_sid = %report.sid,
            twilio_status = %report.twilio_status,
            twilio_code = ?report.error_code,
            outcome = report.status.as_str(),
            previous,
            "status recorded"
        );
        match before.status {
            Some(Status::Failed | Status::Skipped | Status::Expired) => {
                metrics.count("ReconcileMissed");
                warn!(
                    message_id = %message_id,
                    twilio_sid = %report.sid,
                    previous,
                    outcome = report.status.as_str(),
                    "reconcile_missed: Twilio reports a message the send function concluded was never sent"
                );
            }
            Some(status) if status.is_in_flight() => {
                info!(message_id = %message_id, twilio_sid = %report.sid, previous, "healed: the callback recorded an outcome the send function had not written yet");
            }
            _ => {}
        }
    }

    async fn on_refused(
        &self,
        message_id: &MessageId,
        report: &StatusReport,
        old: &LogItem,
        metrics: &Metrics,
    ) -> Result<(), StoreError> {
        if old.status.is_some_and(|status| !status.accepts_callback()) {
            warn!(
                message_id = %message_id,
                twilio_sid = %report.sid,
                status = ?old.status.map(Status::as_str),
                "status callback names a message that never reached Twilio: nothing written"
            );
            return Ok(());
        }
        match old.twilio_sid.as_deref() {
            Some(held) if held != report.sid => {
                let known = old.extra_sids.as_ref().is_some_and(|sids| sids.iter().any(|sid| sid == &report.sid));
                if known {
                    info!(message_id = %message_id, twilio_sid = %report.sid, "a further report about a duplicate already recorded in extra_sids");
                    return Ok(());
                }
                self.log.add_extra_sid(message_id.as_str(), &report.sid, report.now).await?;
                metrics.count("DuplicateCreate");
                error!(
                    message_id = %message_id,
                    twilio_sid = %report.sid,
                    held_sid = held,
                    twilio_status = %report.twilio_status,
                    "duplicate create: Twilio holds a second message for this message_id; recorded in extra_sids"
                );
            }
            _ => debug!(
                message_id = %message_id,
                twilio_sid = %report.sid,
                twilio_status = %report.twilio_status,
                held_rank = ?old.twilio_rank,
                "a replayed or late status: nothing to change"
            ),
        }
        Ok(())
    }

    /// `ErrorCode` 21610: the recipient unsubscribed at Twilio; record the opt-out.
    async fn record_unsubscribed(
        &self,
        message_id: &MessageId,
        phone: Option<&str>,
        sid: &str,
        now: i64,
        metrics: &Metrics,
    ) -> Result<(), StoreError> {
        let Some(phone) = phone.and_then(|raw| PhoneNumber::parse(raw).ok()) else {
            warn!(message_id = %message_id, phone = ?phone.map(mask_phone), "21610 without a usable phone: no opt-out recorded");
            return Ok(());
        };
        let current = self.consent.current(&phone).await?;
        if current.is_some_and(|c| c.state == ConsentState::OptedOut && c.source.is_some_and(|s| s.is_from_parent())) {
            debug!(message_id = %message_id, phone = %phone, "21610: the opt-out is already recorded");
            return Ok(());
        }
        let change =
            ConsentChange { state: ConsentState::OptedOut, source: ConsentSource::Twilio21610, has_evidence: true };
        if self.consent.change(&phone, change, sid, now).await? {
            metrics.count("OptOut");
            info!(message_id = %message_id, phone = %phone, twilio_sid = sid, source = "twilio-21610", "opt-out recorded");
        } else {
            info!(
                message_id = %message_id,
                phone = %phone,
                twilio_sid = sid,
                "21610: no opt-out recorded (this report's opt-out is already in the history, or an erasure stands)"
            );
        }
        Ok(())
    }
}
