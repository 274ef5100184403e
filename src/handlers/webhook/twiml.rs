//! TwiML, the XML the webhook answers an inbound message with.

/// TwiML: one `<Message>` with `reply`, or an empty `<Response/>`.
pub fn twiml(reply: Option<&str>) -> String {
    match reply {
        Some(text) => format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>{}</Message></Response>",
            escape_xml(text)
        ),
        None => "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".into(),
    }
}

/// Escapes text for XML element content and attribute values.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::webhook::OPT_OUT_REPLY;

    #[test]
    fn twiml_is_escaped() {
        assert_eq!(
            twiml(Some("a < b & c > \"d\" l'e")),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>a &lt; b &amp; c &gt; &quot;d&quot; l&apos;e</Message></Response>"
        );
        assert_eq!(twiml(None), "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>");
        assert!(twiml(Some(OPT_OUT_REPLY)).contains("l&apos;école"));
    }
}
