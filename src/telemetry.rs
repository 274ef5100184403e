//! The log set-up of the three functions: one `tracing` subscriber on stdout, in the format
//! Lambda's log configuration asks for.
//!
//! Lambda runs a function with stdout a pipe, not a terminal, and sets
//! `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`) and `AWS_LAMBDA_LOG_LEVEL` from the function's
//! `LoggingConfig` (infra/template.yaml asks for JSON). `lambda_runtime`'s default subscriber
//! kept `tracing-subscriber`'s ANSI colours whenever its `ansi` feature was on (it is, as soon
//! as another crate of the build enables the default features), so a Text line read
//! `account_error\x1b[0m\x1b[2m=\x1b[0mtrue` in CloudWatch, which log filters cannot match.
//! Here colour is always off: Lambda never gives a terminal, and `with_ansi(true)` panics in a
//! debug build whose `tracing-subscriber` lacks the `ansi` feature (the functions' own build).

use lambda_runtime::tracing::subscriber::filter::EnvFilter;
use lambda_runtime::tracing::subscriber::fmt;

use crate::config::Env;

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `INFO message_id="m-1" outcome="sent" outcome recorded`: `key=value` pairs.
    Text,
    /// One JSON object per line (`level`, `fields`, `spans`).
    Json,
}

/// What [`init`] installs, derived from the environment alone (unit-tested without a process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive string (`info`, `missive=debug,warn`).
    pub filter: String,
    /// Variables that were set but not understood: logged once the subscriber is installed,
    /// so that a typo in the configuration shows instead of silently falling back.
    pub problems: Vec<String>,
}

/// The level used when neither `AWS_LAMBDA_LOG_LEVEL` nor `RUST_LOG` is set.
const DEFAULT_FILTER: &str = "info";

/// Reads `AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL` and `RUST_LOG`.
///
/// Precedence, as `lambda_runtime`'s default subscriber has it: `AWS_LAMBDA_LOG_LEVEL` (what
/// the template's `ApplicationLogLevel` sets) over `RUST_LOG` over `info`. Lambda's level
/// names are `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` and `FATAL` (`tracing` has no fatal:
/// it means `error`).
pub fn settings(env: &Env) -> LogSettings {
    let mut problems = Vec::new();
    let format = match env.optional("AWS_LAMBDA_LOG_FORMAT") {
        Some(value) if value.eq_ignore_ascii_case("json") => LogFormat::Json,
        Some(value) if value.eq_ignore_ascii_case("text") || value.is_empty() => LogFormat::Text,
        Some(value) => {
            problems.push(format!("AWS_LAMBDA_LOG_FORMAT: {value:?} is neither Text nor JSON; Text is used"));
            LogFormat::Text
        }
        None => LogFormat::Text,
    };
    let lambda_level = env.optional("AWS_LAMBDA_LOG_LEVEL").filter(|v| !v.trim().is_empty());
    let rust_log = env.optional("RUST_LOG").filter(|v| !v.trim().is_empty());
    let filter = match (lambda_level, rust_log) {
        (Some(level), _) => match lambda_level_filter(&level) {
            Some(filter) => filter.to_owned(),
            None => {
                problems.push(format!(
                    "AWS_LAMBDA_LOG_LEVEL: {level:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL; {DEFAULT_FILTER} is used"
                ));
                DEFAULT_FILTER.to_owned()
            }
        },
        (None, Some(directives)) => match EnvFilter::try_new(&directives) {
            Ok(_) => directives,
            Err(err) => {
                problems
                    .push(format!("RUST_LOG: {directives:?} is not a valid filter ({err}); {DEFAULT_FILTER} is used"));
                DEFAULT_FILTER.to_owned()
            }
        },
        (None, None) => DEFAULT_FILTER.to_owned(),
    };
    LogSettings { format, filter, problems }
}

fn lambda_level_filter(level: &str) -> Option<&'static str> {
    Some(match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// Installs the subscriber from the process's environment; called first thing in each
/// function's `main`. A second call (tests) leaves the first subscriber in place.
pub fn init() {
    let settings = settings(&Env::process());
    install(&settings);
    for problem in &settings.problems {
        tracing::warn!(problem = %problem, "log configuration not understood");
    }
}

fn install(settings: &LogSettings) {
    // Lambda stamps every line itself, and the target adds nothing a reader of one function's
    // log group needs: both left out, as lambda_runtime's default subscriber does.
    let builder = fmt()
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .with_env_filter(EnvFilter::new(&settings.filter))
        .with_writer(std::io::stdout);
    let _ = match settings.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings_of(vars: &[(&str, &str)]) -> LogSettings {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        settings(&Env::from_fn(move |name| vars.get(name).cloned()))
    }

    #[test]
    fn nothing_set_is_text_at_info() {
        assert_eq!(settings_of(&[]), LogSettings { format: LogFormat::Text, filter: "info".into(), problems: vec![] });
    }

    #[test]
    fn json_is_chosen_whatever_the_case() {
        assert_eq!(settings_of(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).format, LogFormat::Json);
        assert_eq!(settings_of(&[("AWS_LAMBDA_LOG_FORMAT", "json")]).format, LogFormat::Json);
        assert_eq!(settings_of(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).format, LogFormat::Text);
    }

    #[test]
    fn an_unknown_format_is_text_and_reported_by_name() {
        let s = settings_of(&[("AWS_LAMBDA_LOG_FORMAT", "xml")]);
        assert_eq!(s.format, LogFormat::Text);
        assert_eq!(s.problems.len(), 1);
        assert!(s.problems[0].starts_with("AWS_LAMBDA_LOG_FORMAT"), "{:?}", s.problems);
    }

    #[test]
    fn lambda_level_wins_over_rust_log() {
        let s = settings_of(&[("AWS_LAMBDA_LOG_LEVEL", "WARN"), ("RUST_LOG", "debug")]);
        assert_eq!(s.filter, "warn");
        assert_eq!(settings_of(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter, "error");
        assert_eq!(settings_of(&[("AWS_LAMBDA_LOG_LEVEL", "debug")]).filter, "debug");
    }

    #[test]
    fn rust_log_directives_are_kept_as_they_are() {
        assert_eq!(settings_of(&[("RUST_LOG", "missive=debug,warn")]).filter, "missive=debug,warn");
    }

    #[test]
    fn bad_levels_fall_back_to_info_and_name_the_variable() {
        let s = settings_of(&[("AWS_LAMBDA_LOG_LEVEL", "LOUD")]);
        assert_eq!(s.filter, "info");
        assert!(s.problems[0].starts_with("AWS_LAMBDA_LOG_LEVEL"), "{:?}", s.problems);
        let s = settings_of(&[("RUST_LOG", "missive=[")]);
        assert_eq!(s.filter, "info");
        assert!(s.problems[0].starts_with("RUST_LOG"), "{:?}", s.problems);
    }
}
