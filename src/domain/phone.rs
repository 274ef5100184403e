//! A phone number in strict E.164 form, valid for its country.

use std::fmt;

/// A recipient's number: `+` and 8–15 digits, valid per `phonenumber`. Only [`PhoneNumber::parse`]
/// makes one, so the rest of the code never checks again.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Why a number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid E.164 number")]
pub struct InvalidPhone;

impl PhoneNumber {
    /// Strict E.164, with an optional `whatsapp:` prefix (dropped).
    pub fn parse(raw: &str) -> Result<Self, InvalidPhone> {
        let number = raw.strip_prefix("whatsapp:").unwrap_or(raw);
        let digits = number.strip_prefix('+').ok_or(InvalidPhone)?;
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidPhone);
        }
        let parsed = phonenumber::parse(None, number).map_err(|_| InvalidPhone)?;
        if !phonenumber::is_valid(&parsed) {
            return Err(InvalidPhone);
        }
        Ok(PhoneNumber(number.to_owned()))
    }

    /// Normalises human input (`+33 6 12 34 56 78`, `06 12 34 56 78` with a default region)
    /// into E.164. For producers such as the CLI; the queue message itself must be strict.
    pub fn parse_lenient(raw: &str, default_region: Option<&str>) -> Result<Self, InvalidPhone> {
        let raw = raw.trim();
        let raw = raw.strip_prefix("whatsapp:").unwrap_or(raw);
        let region = default_region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
        let parsed = phonenumber::parse(region, raw).map_err(|_| InvalidPhone)?;
        if !phonenumber::is_valid(&parsed) {
            return Err(InvalidPhone);
        }
        Self::parse(&parsed.format().mode(phonenumber::Mode::E164).to_string())
    }

    /// Loads `phonenumber`'s metadata now: it decodes its database and checks the syntax of
    /// every pattern of every region on first use (~65–100 ms of CPU, most of a cold start).
    /// Each function calls this during Lambda's INIT phase (before it asks for its first
    /// event), so that the first message does not pay it inside its invocation. Parsing a
    /// valid number also compiles the patterns the strict parse uses.
    pub fn load_metadata() {
        let loaded = Self::parse("+33612345678");
        debug_assert!(loaded.is_ok(), "a valid French mobile number");
    }

    /// `+33612345678`
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `whatsapp:+33612345678`, as Twilio addresses WhatsApp recipients.
    pub fn whatsapp(&self) -> String {
        format!("whatsapp:{}", self.0)
    }

    /// `+33******78`: the form used in logs.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

/// Masks every digit but the country code's first two and the last two: `+33******78`.
/// Works on any text, so a number that failed to parse is masked as well.
pub fn mask_phone(raw: &str) -> String {
    let number = raw.strip_prefix("whatsapp:").unwrap_or(raw);
    let chars: Vec<char> = number.chars().collect();
    let shown_head = if chars.first() == Some(&'+') { 3 } else { 2 };
    if chars.len() <= shown_head + 2 {
        return "*".repeat(chars.len());
    }
    let mut out = String::with_capacity(chars.len());
    for (i, c) in chars.iter().enumerate() {
        if i < shown_head || i >= chars.len() - 2 {
            out.push(*c);
        } else {
            out.push('*');
        }
    }
    out
}

/// Masks every phone number inside a free text (`+` and 8–15 digits), such as an error
/// message from Twilio that quotes the recipient ("The 'To' number +336… is not valid"), so
/// that the text can go into a log line.
pub fn mask_phones_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(plus) = rest.find('+') {
        out.push_str(&rest[..plus]);
        let digits = rest[plus + 1..].bytes().take_while(u8::is_ascii_digit).count();
        let run = &rest[plus..plus + 1 + digits];
        if (8..=15).contains(&digits) {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        rest = &rest[plus + 1 + digits..];
    }
    out.push_str(rest);
    out
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

impl fmt::Display for PhoneNumber {
    /// Masked: a `PhoneNumber` formatted into a log line never shows the whole number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loading_the_metadata_first_changes_no_answer() {
        PhoneNumber::load_metadata();
        assert_eq!(PhoneNumber::parse("+33612345678").unwrap().as_str(), "+33612345678");
        assert_eq!(PhoneNumber::parse("+3361234567"), Err(InvalidPhone));
    }

    #[test]
    fn strict_e164_is_accepted_with_or_without_prefix() {
        assert_eq!(PhoneNumber::parse("+33612345678").unwrap().as_str(), "+33612345678");
        assert_eq!(PhoneNumber::parse("whatsapp:+33612345678").unwrap().as_str(), "+33612345678");
    }

    #[test]
    fn non_strict_or_invalid_numbers_are_refused() {
        for raw in ["33612345678", "+33 6 12 34 56 78", "+33712345678", "+1234", "+3361234567890123", "", "whatsapp:"] {
            assert_eq!(PhoneNumber::parse(raw), Err(InvalidPhone), "{raw:?}");
        }
    }

    #[test]
    fn lenient_parse_normalises_human_input() {
        assert_eq!(PhoneNumber::parse_lenient("+33 6 12 34 56 78", None).unwrap().as_str(), "+33612345678");
        assert_eq!(PhoneNumber::parse_lenient("06 12 34 56 78", Some("FR")).unwrap().as_str(), "+33612345678");
        assert!(PhoneNumber::parse_lenient("06 12", Some("FR")).is_err());
    }

    #[test]
    fn masking_keeps_country_code_and_last_two_digits() {
        let phone = PhoneNumber::parse("+33612345678").unwrap();
        assert_eq!(phone.masked(), "+33*******78");
        assert_eq!(format!("{phone}"), "+33*******78");
        assert_eq!(format!("{phone:?}"), "PhoneNumber(+33*******78)");
        assert_eq!(mask_phone("whatsapp:+14155238886"), "+14*******86");
        assert_eq!(mask_phone("+12"), "***");
    }

    #[test]
    fn phones_inside_a_text_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_phones_in("21211: The 'To' number whatsapp:+33612345678 is not a valid phone number."),
            "21211: The 'To' number whatsapp:+33*******78 is not a valid phone number."
        );
        assert_eq!(mask_phones_in("+33612345678,+14155238886"), "+33*******78,+14*******86");
        // Not phones: too short, too long, a lone plus, no plus.
        assert_eq!(mask_phones_in("1+1 = 2, +1234567, 33612345678, +"), "1+1 = 2, +1234567, 33612345678, +");
        assert_eq!(mask_phones_in("+1234567890123456"), "+1234567890123456");
        assert_eq!(mask_phones_in("é+33612345678é"), "é+33*******78é");
    }
}
