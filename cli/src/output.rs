//! Printing: JSON on stdout (one object per line), text for people, the small formats both
//! use, and progress bars on stderr.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Prints one JSON document on one line of stdout.
pub fn print_json(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(err) => eprintln!("error: could not encode the output as JSON: {err}"),
    }
}

/// A Unix time in seconds as RFC 3339 UTC (`2026-11-24T06:05:11Z`), `-` when absent.
pub fn time(seconds: Option<i64>) -> String {
    seconds
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

/// A warning for people, on stderr (never mixed into JSON output).
pub fn warn(text: &str) {
    eprintln!("warning: {text}");
}

/// An informative note on stderr.
pub fn note(text: &str) {
    eprintln!("{text}");
}

/// Shortens text for a table cell.
pub fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max_chars.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// A progress bar of `len` steps on stderr, labelled `what`; hidden unless `shown` (stderr is
/// a terminal and the output is not JSON: `Context::interactive`).
pub fn progress_bar(shown: bool, len: usize, what: &'static str) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg:>8} [{bar:30}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(time(Some(1_795_593_600)), "2026-11-25T08:00:00Z");
        assert_eq!(time(None), "-");
    }

    #[test]
    fn shorten_keeps_short_text() {
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }
}
