//! Phone numbers as operators write them (`06 12 34 56 78`, `+33 6 12 34 56 78`), normalised
//! to the E.164 form that the queue message and the tables hold. The error masks the number.

use missive::domain::phone::{mask_phone, PhoneNumber};

use crate::error::{CliError, CliResult};

/// A phone number written by a person, normalised to E.164; `region` is the country of a
/// national number (`--phone-region`).
pub fn parse_phone(raw: &str, region: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::parse_lenient(raw, Some(region)).map_err(|_| {
        format!(
            "not a valid phone number ({}; write it as +33612345678, or as a national number of region {region})",
            mask_phone(raw.trim())
        )
    })
}

/// A phone number given as the value of `flag` (`--to`, `--phone`): a usage error names the flag.
pub fn parse_phone_flag(flag: &str, raw: &str, region: &str) -> CliResult<PhoneNumber> {
    parse_phone(raw, region).map_err(|reason| CliError::Usage(format!("{flag}: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_as_people_write_them() {
        assert_eq!(parse_phone("06 12 34 56 78", "FR").unwrap().as_str(), "+33612345678");
        assert!(parse_phone("07 12 34 56 78", "FR").unwrap_err().starts_with("not a valid phone number (07"));
    }

    #[test]
    fn a_bad_flag_value_is_a_usage_error_naming_the_flag() {
        let err = parse_phone_flag("--to", "07 12 34 56 78", "FR").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with("--to: not a valid phone number"), "{err}");
    }
}
