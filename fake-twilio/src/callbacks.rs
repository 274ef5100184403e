//! Status progression of created messages, and the signed status callbacks.

use std::sync::Arc;

use crate::fault::CallbackOutcome;
use crate::message::{Message, API_VERSION};
use crate::options::CallbackOptions;
use crate::signature::sign;
use crate::state::{CallbackRecord, Shared};
use crate::strip_channel;

/// Starts the progression of a just-created message, when callbacks are configured.
pub(crate) fn schedule(shared: &Arc<Shared>, sid: String, to: &str) {
    let Some(options) = shared.options.callbacks.clone() else {
        return;
    };
    let outcome = shared.inner().outcomes.get(strip_channel(to)).copied().unwrap_or_default();
    let task = tokio::spawn(progress(Arc::clone(shared), sid, options, outcome));
    shared.track(task.abort_handle());
}

/// The statuses a message goes through, with their error codes.
fn steps(outcome: CallbackOutcome, options: &CallbackOptions) -> Vec<(&'static str, Option<u32>)> {
    match outcome {
        CallbackOutcome::Delivered if options.read => {
            vec![("sent", None), ("delivered", None), ("read", None)]
        }
        CallbackOutcome::Delivered => vec![("sent", None), ("delivered", None)],
        CallbackOutcome::Sent => vec![("sent", None)],
        CallbackOutcome::Undelivered(code) => vec![("sent", None), ("undelivered", Some(code))],
        CallbackOutcome::Failed(code) => vec![("failed", Some(code))],
    }
}

async fn progress(shared: Arc<Shared>, sid: String, options: CallbackOptions, outcome: CallbackOutcome) {
    for (status, code) in steps(outcome, &options) {
        tokio::time::sleep(options.delay).await;
        let service_sender = shared.options.service_sender.clone();
        let updated = {
            let mut inner = shared.inner();
            inner
                .update(&sid, |m| m.set_status(status, code, &service_sender))
                .map(|s| (s.message.clone(), s.status_callback.clone()))
        };
        let Some((message, callback)) = updated else {
            return;
        };
        if let Some(url) = callback {
            post(&shared, &url, callback_params(&shared.options.account_sid, &message)).await;
        }
    }
}

/// The parameters Twilio sends in a message status callback.
fn callback_params(account_sid: &str, m: &Message) -> Vec<(String, String)> {
    let mut params = vec![
        ("MessageSid", m.sid.clone()),
        ("SmsSid", m.sid.clone()),
        ("AccountSid", account_sid.to_owned()),
        ("From", m.from.clone().unwrap_or_default()),
        ("To", m.to.clone()),
        ("MessageStatus", m.status.clone()),
        ("SmsStatus", m.status.clone()),
        ("ApiVersion", API_VERSION.to_owned()),
    ];
    if m.to.starts_with("whatsapp:") {
        params.push(("ChannelPrefix", "whatsapp".to_owned()));
    }
    if let Some(service) = &m.messaging_service_sid {
        params.push(("MessagingServiceSid", service.clone()));
    }
    if let Some(code) = m.error_code {
        params.push(("ErrorCode", code.to_string()));
    }
    params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// POSTs one signed callback and records it.
async fn post(shared: &Shared, url: &str, params: Vec<(String, String)>) {
    let signature = sign(&shared.options.auth_token, url, &params);
    let result = shared.http.post(url).header("X-Twilio-Signature", &signature).form(&params).send().await;
    let status = match result {
        Ok(response) => Some(response.status().as_u16()),
        Err(error) => {
            tracing::warn!(%url, %error, "status callback failed");
            None
        }
    };
    shared.inner().callbacks.push(CallbackRecord { url: url.to_owned(), params, signature, status });
}
