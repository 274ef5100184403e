//! The local pipeline end to end, in process: the sample campaign of `make demo`
//! (`events/campaign/`), the same poller and sweep loop (`missive_cli::local::run`), the real
//! handlers, the fake Twilio with its behaviour file and signed status callbacks to the
//! webhook, and the `missive` binary for `bulk` and `report --watch`. The demo runs the same
//! with the functions under `cargo lambda watch`.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fake_twilio::{Behaviour, CallbackOptions, FakeTwilio, Options};
use missive::config::{Env, SweepConfig, WebhookConfig};
use missive_cli::local::{self, InProcess};

const CAMPAIGN: &str = "spring-trip";

/// The final report the sample campaign must reach (events/campaign/README.md).
const EXPECTED: &[(&str, u64)] = &[("delivered", 5), ("skipped", 4), ("undelivered", 1), ("failed", 1)];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sample_campaign_settles_to_its_expected_report() {
    let env = TestEnv::start().await;
    let campaign_dir = repo_root().join("events/campaign");
    let twilio = FakeTwilio::start(Options {
        callbacks: Some(CallbackOptions { delay: Duration::from_millis(100), read: false }),
        ..Options::default()
    })
    .await
    .expect("fake Twilio");
    twilio.apply_behaviour(&Behaviour::load(&campaign_dir.join("behaviour.json")).expect("behaviour file"));

    // The webhook, served as a Function URL would serve it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let vars: HashMap<&str, String> = HashMap::from([
        ("MESSAGE_LOG_TABLE", env.log_table.clone()),
        ("CONSENT_TABLE", env.consent_table.clone()),
        ("CAMPAIGN_TABLE", env.campaign_table.clone()),
        ("INBOX_TABLE", env.inbox_table.clone()),
        ("SEND_QUEUE_URL", env.queue_url.clone()),
        ("TWILIO_ACCOUNT_SID", twilio.account_sid().to_owned()),
        ("TWILIO_AUTH_TOKEN", twilio.auth_token().to_owned()),
        ("WEBHOOK_BASE_URL", base.clone()),
    ]);
    let webhook_config = WebhookConfig::from_env(&Env::from_fn(|name| vars.get(name).cloned())).unwrap();
    let webhook = missive::wiring::webhook_handler(webhook_config, &env.aws).await.expect("webhook handler");
    let _server = local::serve_webhook(Arc::new(webhook), listener).await;

    // Before the campaign, parent p11 replied STOP on WhatsApp.
    let inbound = format!("{base}/twilio/inbound");
    let params = [
        ("MessageSid", "SM00000000000000000000000000000011"),
        ("AccountSid", twilio.account_sid()),
        ("From", "whatsapp:+33612345611"),
        ("To", FROM),
        ("Body", "STOP"),
    ];
    let response = reqwest::Client::new()
        .post(&inbound)
        .header("X-Twilio-Signature", fake_twilio::sign(twilio.auth_token(), &inbound, &params))
        .form(&params)
        .send()
        .await
        .expect("POST inbound");
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());

    // The functions, in process, fed by the demo's poller and sweep loop.
    let callback = format!("{base}/twilio/status");
    let send = env
        .send_handler(
            &twilio,
            &[
                ("STATUS_CALLBACK_URL", callback.as_str()),
                ("BACKOFF_BASE_SECONDS", "1"),
                ("RECONCILE_DELAY_SECONDS", "1"),
                ("SWEEP_GRACE_SECONDS", "5"),
            ],
        )
        .await;
    let sweep_config =
        SweepConfig::from_env(&Env::from_fn(|name| vars.get(name).cloned())).expect("sweep configuration");
    let functions = Arc::new(InProcess {
        send: Arc::new(send),
        sweep: missive::wiring::sweep_handler(sweep_config, &env.aws),
        timeout: Duration::from_secs(60),
    });
    let options = local::Options {
        queue_url: env.queue_url.clone(),
        batch_size: 10,
        wait_seconds: 1,
        workers: 2,
        sweep_every: Some(Duration::from_secs(2)),
        run_for: Duration::from_secs(180),
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let pipeline = tokio::spawn(local::run(env.sqs.clone(), functions, options, stop_rx));

    // The campaign, as the demo enqueues it.
    let csv = campaign_dir.join("parents.csv");
    let run = env
        .missive(&[
            "bulk",
            csv.to_str().unwrap(),
            "--campaign",
            CAMPAIGN,
            "--template",
            TEMPLATE,
            "--var-column",
            "first_name=1",
            "--var-column",
            "child=2",
            "--skip-invalid",
            "--json",
        ])
        .await;
    run.ok();
    let out = run.json();
    assert_eq!(
        (out["rows"].as_u64(), out["invalid_rows"].as_u64(), out["enqueued"].as_u64()),
        (Some(12), Some(1), Some(11))
    );
    assert_eq!(out["errors"][0]["line"], 7, "p06's number");
    assert_eq!(out["consent"]["left_alone"][0]["parent_id"], "p11", "the parent's STOP stands: {out}");

    let started = Instant::now();
    let run = env
        .missive(&["report", "--campaign", CAMPAIGN, "--watch", "--interval", "0.5", "--timeout", "120", "--json"])
        .await;
    run.ok();
    assert_eq!(run.json()["settled"], true);
    let settle = started.elapsed();

    // Delivery reports trail the sends by a few hundred milliseconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    let report = loop {
        let report = env.missive(&["report", "--campaign", CAMPAIGN, "--json"]).await.ok().json();
        let done = EXPECTED.iter().all(|(status, n)| report["by_status"][status] == *n);
        if done || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let _ = stop.send(true);
    let stats = pipeline.await.expect("join").expect("pipeline ran").summary();

    for (status, n) in EXPECTED {
        assert_eq!(report["by_status"][status], *n, "{status}: {report}");
    }
    assert_eq!(report["items"], 11, "{report}");
    assert_eq!((report["in_flight"].as_u64(), report["settled"].as_bool()), (Some(0), Some(true)));
    assert_eq!(report["dlq"]["waiting"], 0);

    let p03 = env.item("spring-trip:p03").await.unwrap();
    assert_eq!((p03.status.map(|s| s.as_str()), p03.attempts), (Some("delivered"), 3), "two 503s, then through");
    let p08 = env.item("spring-trip:p08").await.unwrap();
    assert_eq!(p08.last_error_code, Some(63024));
    let p10 = env.item("spring-trip:p10").await.unwrap();
    assert_eq!(p10.last_error_code, Some(63003));
    for n in 1..=12 {
        assert!(twilio.created_count_for(&format!("+336123456{n:02}")) <= 1, "at most one create per parent");
    }
    assert_eq!(twilio.messages().len(), 6, "p01 p02 p03 p05 p08 p09");
    assert_eq!(stats.invoke_errors, 0, "{stats:?}");
    assert_eq!(stats.returned, 0, "{stats:?}");

    let failures = env.missive(&["failures", "--campaign", CAMPAIGN, "--json"]).await.ok().json();
    let ids: Vec<&str> =
        failures["failures"].as_array().unwrap().iter().map(|f| f["message_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["spring-trip:p08", "spring-trip:p10"]);
    eprintln!("settled in {settle:?}; pipeline: {stats:?}");
}
