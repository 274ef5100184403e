//! The sample events of `events/` through the three functions as Cargo Lambda runs them:
//! `cargo lambda watch` serves each function behind a local Lambda API, and
//! `cargo lambda invoke NAME --data-file events/…` invokes it, against moto (fresh tables and
//! queue) and a fake Twilio, as a developer would by hand (events/README.md).
//!
//! One story, one test (the three functions share its state):
//!
//! 1. `send` takes `events/sqs-batch.json`: the body message meets a scripted 503 at Twilio
//!    (`retrying`), the template message is sent, the invalid one is `rejected` with its reason;
//!    no batch item failure.
//! 2. `retry-sweep` takes `events/scheduled.json`: the retrying message is due and re-enqueued;
//!    then `events/scheduler-empty.json`: nothing is due any more.
//! 3. `twilio-webhook` takes `events/webhook-status-delivered.json` (Twilio reports the first
//!    message delivered: the retrying item is healed) and `events/webhook-inbound-stop.json`
//!    (the parent answers STOP: an opt-out), both signed with the token noted in
//!    `events/README.md`.
//!
//! Cost: `cargo lambda watch` compiles each function with `cargo run --bin <function>` (debug)
//! on the first invoke. That build resolves features for the one package, not for the whole
//! workspace as `cargo test --workspace` does (fake-twilio's axum adds hyper's `server`, the
//! dev-dependencies add tracing-subscriber's defaults…), so about 60 of its 320 units, the AWS
//! SDKs among them, are compiled a second time in `target/debug` (a few minutes on 2 cores,
//! once: they stay there for the next run); the second and third functions only build their
//! own binary. A warm run takes about 20 s. Set `CARGO_TARGET_DIR` (not `--target-dir`) if the
//! tests must build elsewhere: the nested `cargo run` inherits it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use fake_twilio::{Fault, Options};
use missive::domain::consent::{ConsentSource, ConsentState};
use missive::domain::phone::PhoneNumber;
use missive::domain::status::Status;
use missive::ports::ConsentStore;
use serde_json::Value;
use tokio::process::Command;

/// The whole test, the first compilations included, must end within this (CI's nextest
/// profile stops a test after 10 minutes). `MISSIVE_LAMBDA_INVOKE_BUDGET_SECS` overrides it.
const DEFAULT_BUDGET: Duration = Duration::from_secs(570);
/// An invoke of a function already compiled.
const WARM_INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// The second recipient of the sample batch (the template message).
const PHONE_2: &str = "+33612345679";
const STATUS_CALLBACK_URL: &str = "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-3.on.aws/twilio/status";
/// The SID in events/webhook-status-delivered.json.
const DELIVERED_SID: &str = "SM0123456789abcdef0123456789abcdef";

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn event(name: &str) -> PathBuf {
    let path = workspace().join("events").join(name);
    assert!(path.is_file(), "missing sample event {}", path.display());
    path
}

/// `cargo-lambda` on `PATH` (scripts/test.sh puts .venv/bin there), else in the workspace's
/// `.venv/bin` (`make tools` installs it from requirements.txt). Never skipped when absent.
fn cargo_lambda() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("cargo-lambda")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([workspace().join(".venv/bin/cargo-lambda")])
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda not found on PATH nor in {}: run the tests through `make test` \
                 (scripts/test.sh installs it into .venv from requirements.txt), or `make tools`",
                workspace().join(".venv/bin").display()
            )
        })
}

/// The webhook's auth token, as events/README.md notes it for the signed sample events.
fn sample_auth_token() -> String {
    let readme = std::fs::read_to_string(event("README.md")).expect("read events/README.md");
    readme
        .lines()
        .find_map(|line| line.trim().strip_prefix("- Webhook auth token: `"))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned)
        .expect("events/README.md names the token of the webhook events (`- Webhook auth token: `…``)")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port").local_addr().unwrap().port()
}

fn budget() -> Duration {
    std::env::var("MISSIVE_LAMBDA_INVOKE_BUDGET_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_BUDGET)
}

/// Loopback traffic must not go through a proxy (cargo lambda invoke and the functions' HTTP
/// clients honour `*_PROXY`).
fn no_proxy(command: &mut Command) {
    command.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
}

/// Removes what cargo sets in a test's environment (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`,
/// `CARGO_PKG_VERSION_*`…) before watch runs `cargo run`: build scripts that declare
/// `rerun-if-env-changed` on those names (ring, through the cc crate, does) would see them
/// change and rerun, recompiling ring, rustls and the AWS SDKs in `target/debug` — and again
/// for the next ordinary build, which has them unset. Cargo's own settings (`CARGO_HOME`,
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_*`, `CARGO_PROFILE_*`…) stay.
fn scrub_cargo_env(command: &mut std::process::Command) {
    const SET_FOR_CRATES: [&str; 6] =
        ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_", "CARGO_BIN_", "CARGO_CFG_", "CARGO_FEATURE_"];
    const SET_FOR_CRATES_EXACT: [&str; 5] =
        ["CARGO", "CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "CARGO_RUSTC_CURRENT_DIR", "OUT_DIR"];
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if SET_FOR_CRATES.iter().any(|prefix| name.starts_with(prefix)) || SET_FOR_CRATES_EXACT.contains(&name) {
            command.env_remove(name);
        }
    }
}

/// Every process descending from `pid`, from /proc (children before grandchildren).
fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.push((child, ppid));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(child, _)| *child));
        i += 1;
    }
    found.remove(0);
    found
}

fn signal(pids: &[u32], signal: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// One `cargo lambda watch` serving one function. Dropping it stops it and everything it
/// started: TERM (watch stops its function and exits), then KILL for whatever is left.
struct Watch {
    package: &'static str,
    port: u16,
    child: std::process::Child,
    log: PathBuf,
    compiled: bool,
}

impl Watch {
    /// Starts `cargo lambda watch` for `package`, from its directory in `functions/` (so that
    /// the `cargo run --bin <name>` it runs selects that package: the workspace root is the
    /// library package, whose `cargo run` knows no function binary), with `env` given to the
    /// function through `--env-var`.
    fn start(package: &'static str, env: &[(&str, String)]) -> Watch {
        let port = free_port();
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("lambda-invoke-{}-{package}-{port}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("create the watch log");
        let mut command = std::process::Command::new(cargo_lambda());
        command
            .current_dir(workspace().join("functions").join(package))
            .args(["lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", &port.to_string()])
            // Compile on the first invoke (not at start), and never restart the function when
            // a file of the workspace changes under the test.
            .args(["--wait", "--ignore-changes"]);
        for (name, value) in env {
            assert!(!value.contains(','), "--env-var splits on commas: {name}={value}");
            command.arg("--env-var").arg(format!("{name}={value}"));
        }
        scrub_cargo_env(&mut command);
        command
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file);
        let child = command.spawn().expect("start cargo lambda watch");
        Watch { package, port, child, log, compiled: false }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }

    /// Waits until watch accepts connections on its port.
    async fn ready(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("cargo lambda watch ({}) exited ({status}) before listening; {}", self.package, self.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch ({}) not listening on 127.0.0.1:{} after {within:?}; {}",
                self.package,
                self.port,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `cargo lambda invoke <function> --data-file <event>`: the function's JSON answer. The
    /// first invoke compiles the function; `end` bounds it.
    async fn invoke(&mut self, function: &str, event_file: &Path, end: Instant) -> Value {
        self.ready(Duration::from_secs(60)).await;
        let limit = if self.compiled { WARM_INVOKE_TIMEOUT } else { end.saturating_duration_since(Instant::now()) };
        let started = Instant::now();
        let mut command = Command::new(cargo_lambda());
        command
            .args(["lambda", "invoke", function, "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(event_file)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        no_proxy(&mut command);
        let output = match tokio::time::timeout(limit, command.output()).await {
            Ok(output) => output.expect("run cargo lambda invoke"),
            Err(_) => panic!(
                "cargo lambda invoke {function} --data-file {} gave no answer within {limit:?}{}; {}",
                event_file.display(),
                if self.compiled { "" } else { " (the first invoke compiles the function)" },
                self.log_tail()
            ),
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "cargo lambda invoke {function} --data-file {} failed ({}):\n{stdout}\n{}\n{}",
            event_file.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.log_tail()
        );
        if !self.compiled {
            eprintln!(
                "[lambda_invoke] first invoke of {function} (cargo run -p {} under watch, then the call) took {:.1} s",
                self.package,
                started.elapsed().as_secs_f64()
            );
            self.compiled = true;
        }
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{function}: the answer is not JSON ({e}): {stdout}\n{}", self.log_tail()))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let pid = self.child.id();
        let family = descendants(pid);
        signal(&[pid], "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is still there: watch itself, cargo, the function (watch may have put them
        // in process groups of their own).
        let mut left = family;
        if self.child.try_wait().ok().flatten().is_none() {
            left.push(pid);
        }
        left.retain(|p| Path::new(&format!("/proc/{p}")).exists());
        signal(&left, "KILL");
        let _ = self.child.wait();
    }
}

/// The response of a Function URL function: status, content type, and body as text.
fn http_response(answer: &Value) -> (u64, String, String) {
    let status = answer["statusCode"].as_u64().unwrap_or_else(|| panic!("no statusCode: {answer}"));
    let content_type = answer["headers"]
        .as_object()
        .and_then(|headers| headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")))
        .and_then(|(_, value)| value.as_str())
        .unwrap_or_default()
        .to_owned();
    let body = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"].as_bool() == Some(true) {
        use base64::Engine as _;
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body).expect("base64 body")).unwrap()
    } else {
        body.to_owned()
    };
    (status, content_type, body)
}

fn sweep_report(answer: &Value) -> (u64, u64, u64, u64, bool) {
    let mut fields: Vec<&str> = answer.as_object().expect("a JSON object").keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        ["due", "duration_ms", "enqueue_failed", "enqueued", "errors", "left_for_next_run", "skipped"],
        "the sweep's report: {answer}"
    );
    assert!(answer["duration_ms"].is_u64(), "{answer}");
    let n = |name: &str| answer[name].as_u64().unwrap_or_else(|| panic!("{name} is not a count: {answer}"));
    assert_eq!(n("errors"), 0, "a run that answered has no store error: {answer}");
    (n("due"), n("enqueued"), n("skipped"), n("enqueue_failed"), answer["left_for_next_run"].as_bool().unwrap())
}

/// The body of the batch record whose message has this id.
fn batch_body(batch: &Value, message_id: &str) -> String {
    batch["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .filter_map(|record| record["body"].as_str())
        .find(|body| serde_json::from_str::<Value>(body).is_ok_and(|m| m["message_id"] == message_id))
        .unwrap_or_else(|| panic!("no record for {message_id} in events/sqs-batch.json"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_events_run_through_cargo_lambda_watch_and_invoke() {
    let started = Instant::now();
    let end = started + budget();
    let cargo_lambda = cargo_lambda();
    let token = sample_auth_token();
    let env = TestEnv::with_twilio(Options { auth_token: token.clone(), ..Options::default() }).await;

    // What the functions read (src/config.rs), and the AWS SDK's own variables: watch passes
    // its environment on to the function, but the configuration is given explicitly.
    let mut vars: Vec<(&str, String)> = vec![
        ("MESSAGE_LOG_TABLE", env.log_table.clone()),
        ("CONSENT_TABLE", env.consent_table.clone()),
        ("CAMPAIGN_TABLE", env.campaign_table.clone()),
        ("INBOX_TABLE", env.inbox_table.clone()),
        ("SEND_QUEUE_URL", env.queue_url.clone()),
        ("TWILIO_ACCOUNT_SID", env.twilio.account_sid().to_owned()),
        ("TWILIO_AUTH_TOKEN", token.clone()),
        ("TWILIO_WHATSAPP_FROM", FROM.to_owned()),
        ("TWILIO_API_BASE_URL", env.twilio.base_url()),
        ("TWILIO_ENABLED", "true".to_owned()),
        ("TWILIO_TIMEOUT_MS", "5000".to_owned()),
        ("STATUS_CALLBACK_URL", STATUS_CALLBACK_URL.to_owned()),
        // A failed attempt is due again at once, and so is the sweep's safety net.
        ("BACKOFF_BASE_SECONDS", "0".to_owned()),
        ("RECONCILE_DELAY_SECONDS", "0".to_owned()),
        ("SWEEP_GRACE_SECONDS", "0".to_owned()),
        ("RUST_LOG", "info".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ];
    for name in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        let value = match (name, std::env::var(name)) {
            (_, Ok(value)) => value,
            ("AWS_DEFAULT_REGION", Err(_)) => std::env::var("AWS_REGION").expect("AWS_REGION"),
            (_, Err(_)) => panic!("{name} is not set: run the tests through `make test`"),
        };
        vars.push((name, value));
    }
    eprintln!("[lambda_invoke] {} {:?}", cargo_lambda.display(), vars.iter().map(|(k, _)| k).collect::<Vec<_>>());

    // ---- send: events/sqs-batch.json ------------------------------------------------------
    let batch_file = event("sqs-batch.json");
    let batch: Value = serde_json::from_str(&std::fs::read_to_string(&batch_file).unwrap()).unwrap();
    env.opt_in(&[PHONE, PHONE_2]).await;
    env.twilio.push_fault(Some(PHONE), Fault::service_unavailable());
    let mut send = Watch::start("send", &vars);
    let answer = send.invoke("send", &batch_file, end).await;
    assert_eq!(answer, serde_json::json!({"batchItemFailures": []}), "every record is recorded: nothing back to SQS");

    let retrying = env.item("sortie-musee:eleve-17").await;
    assert_eq!(retrying.status, Some(Status::Retrying), "{retrying:?}");
    assert_eq!(retrying.attempts, 1);
    assert_eq!(retrying.last_error.as_deref(), Some("20503: Service Unavailable"));
    assert_eq!(retrying.phone.as_deref(), Some(PHONE));
    assert_eq!(
        (retrying.campaign.as_deref(), retrying.recipient_id.as_deref()),
        (Some("sortie-musee"), Some("eleve-17"))
    );
    assert!(retrying.retry_due_at.is_some() && retrying.twilio_sid.is_none(), "{retrying:?}");
    let request_17 = batch_body(&batch, "sortie-musee:eleve-17");
    assert_eq!(retrying.request.as_deref(), Some(request_17.as_str()));

    let sent = env.item("sortie-musee:eleve-18").await;
    assert_eq!(sent.status, Some(Status::Sent), "{sent:?}");
    assert_eq!(sent.phone.as_deref(), Some(PHONE_2), "stored without the whatsapp: prefix");
    assert_eq!(sent.attempts, 1);
    let sid = sent.twilio_sid.clone().expect("twilio_sid of the sent message");
    assert!(sent.retry_due_at.is_none() && sent.lease_owner.is_none(), "{sent:?}");

    let rejected = env.item("sortie-musee:eleve-19").await;
    assert_eq!(rejected.status, Some(Status::Rejected), "{rejected:?}");
    assert_eq!(rejected.last_error.as_deref(), Some("to: not a valid E.164 number"));
    assert_eq!((rejected.phone.as_deref(), rejected.attempts), (None, 0));

    let creates = env.twilio.creates();
    assert_eq!(creates.len(), 2, "one create per valid message: {creates:?}");
    let template =
        creates.iter().find(|c| c.param("To") == Some("whatsapp:+33612345679")).expect("the template create");
    assert_eq!(template.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(template.param("ContentSid"), Some("HX0123456789abcdef0123456789abcdef"));
    assert_eq!(template.param("ContentVariables"), Some(r#"{"1":"Inès","2":"jeudi 14 mars"}"#));
    assert!(
        template
            .param("StatusCallback")
            .is_some_and(|url| url.starts_with(&format!("{STATUS_CALLBACK_URL}?message_id="))),
        "{template:?}"
    );
    assert_eq!(env.twilio.created_count_for(PHONE), 0, "the 503 created nothing");

    // ---- retry-sweep: events/scheduled.json, then events/scheduler-empty.json --------------
    let mut sweep = Watch::start("retry-sweep", &vars);
    let report = sweep.invoke("retry-sweep", &event("scheduled.json"), end).await;
    assert_eq!(sweep_report(&report), (1, 1, 0, 0, false), "the retrying message is due: {report}");
    let report = sweep.invoke("retry-sweep", &event("scheduler-empty.json"), end).await;
    assert_eq!(sweep_report(&report), (0, 0, 0, 0, false), "rescheduled by the first run: {report}");
    // send's own delayed copy (delay 0 here) and the sweep's: the original request, verbatim.
    let requeued = env.requeued().await;
    assert_eq!(requeued, vec![request_17.clone(), request_17.clone()]);
    drop(sweep);

    // ---- twilio-webhook: the signed events -----------------------------------------------
    let mut webhook = Watch::start("twilio-webhook", &vars);
    let answer = webhook.invoke("twilio-webhook", &event("webhook-status-delivered.json"), end).await;
    let (status, _, body) = http_response(&answer);
    assert_eq!((status, body.as_str()), (200, ""), "{answer}");
    let healed = env.item("sortie-musee:eleve-17").await;
    assert_eq!(healed.status, Some(Status::Delivered), "Twilio's report heals the retrying item: {healed:?}");
    assert_eq!(healed.twilio_sid.as_deref(), Some(DELIVERED_SID));
    assert_eq!(healed.twilio_status.as_deref(), Some("delivered"));
    assert!(healed.delivered_at.is_some(), "{healed:?}");
    assert!(
        healed.retry_due_at.is_none()
            && healed.retry_shard.is_none()
            && healed.next_attempt_at.is_none()
            && healed.lease_owner.is_none(),
        "in-flight attributes removed: {healed:?}"
    );

    let answer = webhook.invoke("twilio-webhook", &event("webhook-inbound-stop.json"), end).await;
    let (status, content_type, body) = http_response(&answer);
    assert_eq!(status, 200, "{answer}");
    assert!(content_type.starts_with("text/xml"), "TwiML: {answer}");
    assert!(body.contains("<Response><Message>"), "a confirmation: {body}");
    let consent = env.consent().current(&PhoneNumber::parse(PHONE).unwrap()).await.expect("read Consent");
    let consent = consent.expect("a Consent item for the parent");
    assert_eq!((consent.state, consent.source), (ConsentState::OptedOut, Some(ConsentSource::WhatsappReply)));
    drop(webhook);
    drop(send);

    eprintln!("[lambda_invoke] done in {:.1} s", started.elapsed().as_secs_f64());
}
