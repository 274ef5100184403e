//! Exit codes and usage errors that need no AWS at all.

mod common;

use common::*;

fn missive(args: &[&str]) -> Run {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(args)
        .env_remove("SEND_QUEUE_URL")
        .env_remove("DLQ_URL")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9") // nothing listens: no test here may reach AWS
        .env("AWS_REGION", "eu-west-3")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run missive");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn usage_errors_exit_2_and_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["send", "--to", "+33613000001"], "--body"),
        (&["send", "--to", "+33613000001", "--body", "x", "--template", TEMPLATE], "cannot be used with"),
        (&["send", "--to", "+33613000001", "--var", "1=x", "--body", "x"], "--template"),
        (&["send", "--to", "+33613000001", "--template", TEMPLATE, "--var", "novalue"], "expected NAME=VALUE"),
        (&["bulk", "f.csv", "--body", "x"], "--campaign"),
        (&["report"], "--campaign"),
        (&["report", "--campaign", "c", "--interval", "1"], "--watch"),
        (&["failures"], "--campaign"),
        (&["consent", "set", "--phone", "+33613000001"], "--optin"),
        (&["consent", "set", "--phone", "+33613000001", "--optin", "--optout"], "cannot be used with"),
        (&["forget"], "--phone"),
        (&["nonsense"], "unrecognized subcommand"),
        (&["send", "--to", "+33613000001", "--body", "x"], "SEND_QUEUE_URL (or --queue-url) is required"),
        (&["--phone-region", "France", "send", "--to", "0613000001", "--body", "x"], "--phone-region"),
        (&["report", "--campaign", "a b"], "--campaign: character ' ' not allowed"),
    ];
    for (args, expected) in cases {
        let run = missive(args);
        assert_eq!(run.code, 2, "{args:?}: {run:#?}");
        assert!(run.stderr.contains(expected), "{args:?}: expected {expected:?} in {}", run.stderr);
    }
}

#[test]
fn help_lists_the_exit_codes_and_hides_the_local_poller() {
    let run = missive(&["--help"]);
    assert_eq!(run.code, 0);
    for text in ["Exit codes", "4 the CSV file has invalid rows", "5 report --watch timed out", "bulk", "forget", "dlq"]
    {
        assert!(run.stdout.contains(text), "{text:?} in {}", run.stdout);
    }
    assert!(!run.stdout.contains("local-poller"));
}

#[test]
fn a_bulk_dry_run_needs_no_aws() {
    let run = missive(&[
        "bulk",
        repo_root().join("events/campaign/parents.csv").to_str().unwrap(),
        "--campaign",
        "spring-trip",
        "--template",
        TEMPLATE,
        "--var-column",
        "first_name=1",
        "--skip-invalid",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{run:#?}");
    let out = run.json();
    assert_eq!(out["would_enqueue"], 11);
    assert_eq!(out["invalid_rows"], 1);
    assert_eq!(out["errors"][0]["line"], 7);
    assert_eq!(out["errors"][0]["field"], "phone");
    assert_eq!(out["messages"][0]["message_id"], "spring-trip:p01");
    assert_eq!(out["messages"][0]["to"], "+33*******01");
}

#[test]
fn setup_refuses_real_aws_without_the_flag() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_missive"))
        .args(["setup"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_REGION", "eu-west-3")
        .output()
        .expect("run missive");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--yes-real-aws"));
}
