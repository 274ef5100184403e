//! Twilio's request signature (`X-Twilio-Signature`) and the URL variants it is checked
//! against (DESIGN.md, "Webhook", "Signature").
//!
//! `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + the POST parameters sorted by
//! name, each name followed by its value)). A repeated name contributes each distinct value
//! once, values sorted, as Twilio's Python and Node libraries do. Pure: no clock, no I/O.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::{Choice, ConstantTimeEq};

/// The header Twilio signs every webhook request with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The parameters in signing order: sorted by name, then by value, each distinct
/// (name, value) pair once.
pub fn signing_params(params: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// The raw HMAC-SHA1 of `url` followed by the sorted parameters.
fn mac(token: &str, url: &str, params: &[(&str, &str)]) -> Vec<u8> {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// The signature Twilio computes for a POST of `params` to `url` with `token`.
pub fn compute(token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(token, url, &signing_params(params)))
}

/// The URLs a signature is checked against: `url` as built, and the same URL with the
/// scheme's default port (`:443` for https, `:80` for http) made explicit or removed, as
/// Twilio's helper libraries accept. A URL with another explicit port is only itself.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else { return variants };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // The port separator is the last ':' that is not inside an IPv6 literal's brackets.
    let port_separator = authority.rfind(':').filter(|&at| !authority[at..].contains(']'));
    match port_separator {
        Some(at) if &authority[at + 1..] == default_port => {
            variants.push(format!("{scheme}://{}{tail}", &authority[..at]));
        }
        Some(_) => {}
        None => variants.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    variants
}

/// Whether `signature` is Twilio's signature of `params` posted to one of `urls` (each with
/// its port variants) with one of `tokens`. Every candidate is compared in constant time.
pub fn verify<T: AsRef<str>>(tokens: &[T], urls: &[String], params: &[(String, String)], signature: &str) -> bool {
    let signature = signature.trim();
    if signature.is_empty() {
        return false;
    }
    let pairs = signing_params(params);
    let mut matched = Choice::from(0);
    for token in tokens {
        for url in urls.iter().flat_map(|url| url_variants(url)) {
            let expected = base64::engine::general_purpose::STANDARD.encode(mac(token.as_ref(), &url, &pairs));
            matched |= expected.as_bytes().ct_eq(signature.as_bytes());
        }
    }
    matched.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn twilio_params() -> Vec<(String, String)> {
        params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const URL_443: &str = "https://mycompany.com:443/myapp.php?foo=1&bar=2";

    #[test]
    fn twilio_published_vector() {
        assert_eq!(compute("12345", URL, &twilio_params()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        let mut shuffled = twilio_params();
        shuffled.reverse();
        assert_eq!(compute("12345", URL, &shuffled), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn twilio_vector_with_the_default_port() {
        assert_eq!(compute("12345", URL_443, &twilio_params()), "kvajT1Ptam85bY51eRf/AJRuM3w=");
    }

    #[test]
    fn verify_accepts_the_url_with_and_without_the_default_port() {
        let urls = [URL.to_owned()];
        assert!(verify(&["12345"], &urls, &twilio_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(verify(&["12345"], &urls, &twilio_params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
        let urls_443 = [URL_443.to_owned()];
        assert!(verify(&["12345"], &urls_443, &twilio_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(verify(&["12345"], &urls_443, &twilio_params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
    }

    #[test]
    fn verify_refuses_wrong_token_url_params_or_signature() {
        let urls = [URL.to_owned()];
        let good = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify(&["54321"], &urls, &twilio_params(), good));
        assert!(!verify(&["12345"], &["https://mycompany.com/myapp.php?foo=1".to_owned()], &twilio_params(), good));
        let mut tampered = twilio_params();
        tampered[2].1 = "9999".into();
        assert!(!verify(&["12345"], &urls, &tampered, good));
        assert!(!verify(&["12345"], &urls, &twilio_params(), ""));
        assert!(!verify(&["12345"], &urls, &twilio_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
        assert!(!verify::<&str>(&[], &urls, &twilio_params(), good));
    }

    #[test]
    fn verify_tries_every_token() {
        let urls = [URL.to_owned()];
        assert!(verify(&["rotated-away", "12345"], &urls, &twilio_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn url_variants_add_or_remove_the_default_port() {
        assert_eq!(url_variants(URL), vec![URL.to_owned(), URL_443.to_owned()]);
        assert_eq!(url_variants(URL_443), vec![URL_443.to_owned(), URL.to_owned()]);
        assert_eq!(url_variants("https://h.example/x"), vec!["https://h.example/x", "https://h.example:443/x"]);
        assert_eq!(
            url_variants("http://127.0.0.1:80/a?b=c"),
            vec!["http://127.0.0.1:80/a?b=c", "http://127.0.0.1/a?b=c"]
        );
        assert_eq!(url_variants("https://h.example:8443/x"), vec!["https://h.example:8443/x"]);
        assert_eq!(url_variants("https://[::1]/x"), vec!["https://[::1]/x", "https://[::1]:443/x"]);
        assert_eq!(url_variants("https://h.example"), vec!["https://h.example", "https://h.example:443"]);
        assert_eq!(url_variants("not a url"), vec!["not a url"]);
    }

    #[test]
    fn a_repeated_name_contributes_each_distinct_value_once_sorted() {
        let repeated = params(&[("MediaUrl", "b"), ("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b")]);
        assert_eq!(signing_params(&repeated), vec![("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b")]);
        let once = params(&[("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b")]);
        assert_eq!(compute("t", "https://x/y", &repeated), compute("t", "https://x/y", &once));
    }
}
