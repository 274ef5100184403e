//! The create form and Twilio's validation of it, with Twilio's error codes.

use axum::http::StatusCode;

use crate::error::TwilioError;
use crate::message::NewMessage;

/// The create parameters the server looks at; empty values count as absent.
#[derive(Debug, Default)]
pub(crate) struct CreateForm {
    pub to: Option<String>,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: Option<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
    pub media_urls: Vec<String>,
    pub status_callback: Option<String>,
    pub validity_period: Option<String>,
}

impl CreateForm {
    /// Reads the form; for single-valued names the last value wins.
    pub fn from_params(params: &[(String, String)]) -> Self {
        let mut form = CreateForm::default();
        for (name, value) in params {
            if value.is_empty() {
                continue;
            }
            let value = Some(value.clone());
            match name.as_str() {
                "To" => form.to = value,
                "From" => form.from = value,
                "MessagingServiceSid" => form.messaging_service_sid = value,
                "Body" => form.body = value,
                "ContentSid" => form.content_sid = value,
                "ContentVariables" => form.content_variables = value,
                "MediaUrl" => form.media_urls.extend(value),
                "StatusCallback" => form.status_callback = value,
                "ValidityPeriod" => form.validity_period = value,
                _ => {}
            }
        }
        form
    }

    /// The sender a rate limit applies to.
    pub fn sender(&self) -> Option<&str> {
        self.from.as_deref().or(self.messaging_service_sid.as_deref())
    }

    /// Validates as Twilio does, in Twilio's order.
    pub fn validate(&self) -> Result<NewMessage, TwilioError> {
        let bad = |code, message: String| TwilioError::new(StatusCode::BAD_REQUEST, code, message);
        let to = self.to.clone().ok_or_else(|| bad(21604, "A 'To' phone number is required.".to_owned()))?;
        if self.from.is_none() && self.messaging_service_sid.is_none() {
            return Err(bad(21603, "A 'From' phone number is required.".to_owned()));
        }
        if self.body.is_none() && self.content_sid.is_none() && self.media_urls.is_empty() {
            return Err(bad(21602, "Message body is required.".to_owned()));
        }
        if !is_e164(channel_address(&to)) {
            return Err(bad(21211, format!("Invalid 'To' Phone Number: {to}")));
        }
        if let Some(from) = &self.from {
            let address = channel_address(from);
            if address.is_empty() || (from.starts_with("whatsapp:") && !is_e164(address)) {
                return Err(bad(21212, format!("Invalid 'From' Phone Number: {from}")));
            }
            if channel(from) != channel(&to) {
                return Err(bad(
                    21910,
                    format!("Invalid From and To pair. From and To should be of the same channel: {from}, {to}"),
                ));
            }
        }
        if let Some(body) = &self.body {
            if body.chars().count() > 1600 {
                return Err(bad(21617, "The concatenated message body exceeds the 1600 character limit.".to_owned()));
            }
        }
        if let Some(sid) = &self.content_sid {
            if !is_sid(sid, "HX") {
                return Err(bad(21655, "The ContentSid is Invalid.".to_owned()));
            }
        }
        if let Some(variables) = &self.content_variables {
            if self.content_sid.is_none() {
                return Err(bad(21654, "ContentSid Required".to_owned()));
            }
            let valid = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(variables)
                .is_ok_and(|map| map.values().all(serde_json::Value::is_string));
            if !valid {
                return Err(bad(21656, "The ContentVariables Parameter is invalid.".to_owned()));
            }
        }
        if let Some(period) = &self.validity_period {
            if !period.parse::<u32>().is_ok_and(|p| (1..=36_000).contains(&p)) {
                return Err(bad(21624, "Invalid validity period value".to_owned()));
            }
        }
        if let Some(url) = &self.status_callback {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(bad(21609, format!("Invalid StatusCallback url: {url}")));
            }
        }
        Ok(NewMessage {
            to,
            from: self.from.clone(),
            messaging_service_sid: self.messaging_service_sid.clone(),
            body: self.body.clone(),
            num_media: self.media_urls.len(),
        })
    }
}

/// The channel of an address (`whatsapp`), empty for a plain number.
fn channel(address: &str) -> &str {
    address.split_once(':').map_or("", |(channel, _)| channel)
}

/// The address without its channel prefix.
fn channel_address(address: &str) -> &str {
    address.split_once(':').map_or(address, |(_, rest)| rest)
}

/// `+` and 8 to 15 digits.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The prefix and 32 hex digits.
fn is_sid(sid: &str, prefix: &str) -> bool {
    sid.strip_prefix(prefix).is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> CreateForm {
        let params: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        CreateForm::from_params(&params)
    }

    fn code(pairs: &[(&str, &str)]) -> Option<u32> {
        form(pairs).validate().err().and_then(|e| e.code)
    }

    #[test]
    fn twilio_codes_for_missing_and_invalid_fields() {
        let to = ("To", "whatsapp:+33612345678");
        let from = ("From", "whatsapp:+14155238886");
        assert_eq!(code(&[from, ("Body", "x")]), Some(21604));
        assert_eq!(code(&[to, ("Body", "x")]), Some(21603));
        assert_eq!(code(&[to, from]), Some(21602));
        assert_eq!(code(&[to, from, ("Body", "")]), Some(21602));
        assert_eq!(code(&[("To", "whatsapp:0612"), from, ("Body", "x")]), Some(21211));
        assert_eq!(code(&[("To", "+33612345678"), from, ("Body", "x")]), Some(21910));
        let long = "é".repeat(1601);
        assert_eq!(code(&[to, from, ("Body", &long)]), Some(21617));
        assert_eq!(code(&[to, from, ("ContentSid", "HX12")]), Some(21655));
        let sid = "HX0123456789abcdef0123456789abcdef";
        assert_eq!(code(&[to, from, ("ContentSid", sid), ("ContentVariables", "{1:")]), Some(21656));
        assert_eq!(code(&[to, from, ("Body", "x"), ("ValidityPeriod", "36001")]), Some(21624));
        assert_eq!(code(&[to, from, ("Body", "x"), ("StatusCallback", "ftp://x")]), Some(21609));
        assert_eq!(code(&[to, from, ("ContentSid", sid), ("ContentVariables", r#"{"1":"Jean"}"#)]), None);
        assert_eq!(code(&[to, ("MessagingServiceSid", "MG1"), ("MediaUrl", "https://x/y.png")]), None);
    }
}
