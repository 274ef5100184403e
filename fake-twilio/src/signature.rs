//! Twilio's request signature (`X-Twilio-Signature`).

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;

/// `base64(HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2 …))`, the POST
/// parameters sorted by name; a repeated name contributes each distinct value once, values
/// sorted (as Twilio's helper libraries do). `url` is the full URL, query included.
pub fn sign<K: AsRef<str>, V: AsRef<str>>(auth_token: &str, url: &str, params: &[(K, V)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in pairs {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: [(&str, &str); 5] = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ];

    #[test]
    fn twilio_published_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(sign("12345", url, &PARAMS), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        let mut shuffled = PARAMS;
        shuffled.reverse();
        assert_eq!(sign("12345", url, &shuffled), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn twilio_vector_with_explicit_port() {
        let url = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(sign("12345", url, &PARAMS), "kvajT1Ptam85bY51eRf/AJRuM3w=");
    }

    #[test]
    fn repeated_values_count_once_and_sorted() {
        let a = sign("t", "https://x/y", &[("M", "b"), ("M", "a"), ("M", "b")]);
        let b = sign("t", "https://x/y", &[("M", "a"), ("M", "b")]);
        assert_eq!(a, b);
    }
}
