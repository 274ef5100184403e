//! The staff report page checked as a person sees it: the sample campaign of `make demo`
//! (`events/campaign/`) goes through the real pipeline (moto, the real send and webhook
//! handlers, the fake Twilio's scripted failures and signed status callbacks), then
//! `missive report --html` writes its page, and Debian's headless Chromium opens it from disk:
//! the DOM it renders is checked for the counts, the families not reached and their masked
//! phones; a screenshot is taken at a phone's width; and the page, framed 390 px wide in a
//! probe page with one line of script, reports whether anything scrolls sideways (the page
//! itself has no script).
//!
//! Chromium is required: the test command installs it (`ensure_chromium` in scripts/lib.sh);
//! without it this test fails, it never skips.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fake_twilio::{Behaviour, CallbackOptions, FakeTwilio, Options};
use missive::adapters::dynamo::DynamoCampaigns;
use missive::config::{Env, SweepConfig, WebhookConfig};
use missive::domain::consent::{ConsentSource, ConsentState};
use missive::ports::CampaignStore;
use missive_cli::local::{self, InProcess};

const CAMPAIGN: &str = "spring-trip";

/// The sample campaign's final counts (events/campaign/README.md).
const EXPECTED: &[(&str, u64)] = &[("delivered", 5), ("skipped", 4), ("undelivered", 1), ("failed", 1)];

/// Each family not reached, its masked phone, and why (French, English).
const UNREACHED: &[(&str, &str, &str, &str)] = &[
    (
        "p04",
        "+33*******04",
        "Ils n'ont pas accepté les messages WhatsApp (fichier de l'école).",
        "They have not accepted WhatsApp messages (school's file).",
    ),
    (
        "p07",
        "+33*******07",
        "Ils n'ont pas accepté les messages WhatsApp (fichier de l'école).",
        "They have not accepted WhatsApp messages (school's file).",
    ),
    (
        "p08",
        "+33*******08",
        "WhatsApp refuse ce destinataire (numéro inconnu ou compte WhatsApp inactif).",
        "WhatsApp refused this recipient (unknown number or inactive WhatsApp account).",
    ),
    ("p10", "+33*******10", "Ce numéro n'utilise pas WhatsApp.", "This number does not use WhatsApp."),
    (
        "p11",
        "+33*******11",
        "Ils ont demandé à ne plus recevoir de messages WhatsApp (STOP).",
        "They asked to stop WhatsApp messages (STOP).",
    ),
    (
        "p12",
        "+33*******12",
        "Ils n'ont pas accepté les messages WhatsApp (fichier de l'école).",
        "They have not accepted WhatsApp messages (school's file).",
    ),
];

/// How long one Chromium run may take before it is killed (a cold start on a busy 2-core
/// machine takes a few seconds).
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the sample campaign through the pipeline until it reaches its expected counts.
async fn sample_campaign(env: &TestEnv) {
    let campaign_dir = repo_root().join("events/campaign");
    let twilio = FakeTwilio::start(Options {
        callbacks: Some(CallbackOptions { delay: Duration::from_millis(100), read: false }),
        ..Options::default()
    })
    .await
    .expect("fake Twilio");
    twilio.apply_behaviour(&Behaviour::load(&campaign_dir.join("behaviour.json")).expect("behaviour file"));

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
    assert_eq!(response.status(), 200);

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
    let sweep_config = SweepConfig::from_env(&Env::from_fn(|name| vars.get(name).cloned())).unwrap();
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

    let csv = campaign_dir.join("parents.csv");
    let csv = csv.to_str().unwrap();
    let bulk = ["bulk", csv, "--campaign", CAMPAIGN, "--template", TEMPLATE, "--var-column", "first_name=1"];
    env.missive(&[&bulk[..], &["--var-column", "child=2", "--skip-invalid"]].concat()).await.ok();
    env.missive(&["report", "--campaign", CAMPAIGN, "--watch", "--interval", "0.5", "--timeout", "120"]).await.ok();
    // Delivery reports trail the sends by a few hundred milliseconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = env.missive(&["report", "--campaign", CAMPAIGN, "--json"]).await.ok().json();
        if EXPECTED.iter().all(|(status, n)| report["by_status"][status] == *n) {
            break;
        }
        assert!(Instant::now() < deadline, "the sample campaign did not reach its expected counts: {report}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = stop.send(true);
    pipeline.await.expect("join").expect("pipeline ran");
}

/// Debian's chromium: `CHROMIUM_BIN` (set by the test command), else `chromium` on PATH.
fn chromium() -> PathBuf {
    if let Some(bin) = std::env::var_os("CHROMIUM_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|path| path.is_file())
        .expect("Chromium is required for this test: run it through `make test` (scripts/test.sh installs Debian's chromium), or apt-get install -y chromium")
}

/// Runs headless Chromium on `page` (a file) with `extra` flags; returns its stdout. Only the
/// file is opened: no network, a fresh profile, killed after [`CHROMIUM_TIMEOUT`].
fn run_chromium(page: &Path, extra: &[String]) -> String {
    let profile = temp_dir().join("chromium-profile");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?} on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("chromium's output");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(status.success(), "chromium failed ({status}): {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The DOM after layout, as Chromium renders it at a phone's size.
fn rendered_dom(page: &Path) -> String {
    let dom = run_chromium(page, &["--window-size=390,844".into(), "--dump-dom".into()]);
    assert!(dom.contains("</html>"), "no DOM dumped: {dom}");
    dom
}

/// The rows of the families table, each row's cells as text (tags dropped, entities kept).
fn family_rows(dom: &str) -> Vec<Vec<String>> {
    dom.split("<tr class=\"family\">")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").expect("a closed row")];
            row.split("</td>")
                .filter_map(|cell| cell.rfind('>').map(|at| cell[at + 1..].trim().to_owned()))
                .filter(|cell| !cell.is_empty())
                .collect()
        })
        .collect()
}

/// The dumped DOM with the entities Chromium writes into text turned back into characters,
/// so that it compares with the words of the page.
fn dom_text(dom: &str) -> String {
    dom.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}")
}

/// The width of a PNG, from its header.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("the screenshot exists");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{} is not a PNG", path.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sample_campaign_page_as_a_person_sees_it() {
    let chromium = chromium(); // fails now, not after the campaign, when it is missing
    let env = TestEnv::start().await;
    sample_campaign(&env).await;
    let dir = temp_dir();
    let (fr_page, en_page, csv) = (dir.join("report-fr.html"), dir.join("report-en.html"), dir.join("list.csv"));

    let run = env
        .missive(&[
            "report",
            "--campaign",
            CAMPAIGN,
            "--html",
            fr_page.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ])
        .await;
    run.ok();
    assert!(run.stdout.contains(&format!("report page: {}", fr_page.display())), "{}", run.stdout);
    assert!(run.stdout.contains("(6 families not reached)"), "{}", run.stdout);
    let mut english = env.command(&["report", "--campaign", CAMPAIGN, "--html", en_page.to_str().unwrap()]);
    english.env("SCHOOL_LANG", "en"); // the default language comes from SCHOOL_LANG
    common::run(english).await.ok();

    // French, as Chromium renders it at 390 × 844.
    let dom = dom_text(&rendered_dom(&fr_page));
    assert!(dom.contains("<html lang=\"fr\">"), "{}", &dom[..200]);
    assert!(dom.contains("Sur 11 messages, 5 sont arrivés sur le téléphone des parents."), "{dom}");
    for figure in ["11 · 100\u{202f}%", "6 · 55\u{202f}%", "5 · 45\u{202f}%", "0 · 0\u{202f}%"] {
        assert!(dom.contains(figure), "the funnel shows {figure:?}");
    }
    for (label, count) in [("Arrivé", 5), ("Non envoyé : pas d'accord", 4), ("Non distribué", 1), ("Échec", 1)] {
        let row = dom.split("<tr class=\"status\">").find(|row| row.contains(&format!("<strong>{label}</strong>")));
        let row = row.unwrap_or_else(|| panic!("no status row {label:?}"));
        assert!(row.contains(&format!("<td class=\"num\">{count}</td>")), "{label}: {count} in {row}");
    }
    assert_eq!(dom.matches("<tr class=\"status\">").count(), 4, "only the statuses the campaign has");
    let rows = family_rows(&dom);
    let found: Vec<(&str, &str, &str)> =
        rows.iter().map(|row| (row[0].as_str(), row[1].as_str(), row[2].as_str())).collect();
    let expected: Vec<(&str, &str, &str)> = UNREACHED.iter().map(|(id, phone, fr, _)| (*id, *phone, *fr)).collect();
    assert_eq!(found, expected, "the families not reached, their masked phones and why");
    assert!(rows.iter().all(|row| row.len() == 5 && !row[3].is_empty()), "each says what to do: {rows:?}");
    assert!(!dom.contains("+336123456"), "a whole phone number on the page without --show-phones");
    for none in ["Pas encore de réponse des parents.", "Pas encore de réponse aux boutons."] {
        assert!(dom.contains(none), "{none:?}");
    }
    assert!(!dom.contains("Ont répondu"), "no acknowledgement step without answers");

    // English, the language from SCHOOL_LANG.
    let dom = dom_text(&rendered_dom(&en_page));
    assert!(dom.contains("<html lang=\"en\">"));
    assert!(dom.contains("Of 11 messages, 5 reached the parents' phones."), "{dom}");
    let found: Vec<(String, String)> =
        family_rows(&dom).into_iter().map(|row| (row[0].clone(), row[2].clone())).collect();
    let expected: Vec<(String, String)> =
        UNREACHED.iter().map(|(id, _, _, en)| (id.to_string(), en.to_string())).collect();
    assert_eq!(found, expected);
    assert!(dom.contains("No replies yet."));
    assert!(!dom.contains("Familles non jointes"), "no French on the English page");

    // Nothing scrolls sideways at 390 px. Headless Chromium lays a window out at least 500 px
    // wide whatever --window-size says (only the screenshot is resized), so the page is put,
    // whole, in a frame exactly 390 px wide, and one line of script writes the framed
    // document's widths into the DOM before it is dumped.
    let probe = dir.join("report-fr-probe.html");
    let html = std::fs::read_to_string(&fr_page).unwrap();
    let framed = html.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    std::fs::write(
        &probe,
        format!(
            "<!DOCTYPE html><html><body style=\"margin:0\">\
             <iframe id=\"page\" style=\"border:0;width:390px;height:844px\" srcdoc=\"{framed}\"></iframe>\
             <script>window.addEventListener('load', () => {{ \
             const d = document.getElementById('page').contentDocument.documentElement; \
             document.body.setAttribute('data-widths', d.scrollWidth + 'x' + d.clientWidth); }});</script>\
             </body></html>"
        ),
    )
    .unwrap();
    let dom = rendered_dom(&probe);
    let widths = dom.split("data-widths=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("widths written");
    let (scroll, client) = widths.split_once('x').unwrap();
    let (scroll, client): (u32, u32) = (scroll.parse().unwrap(), client.parse().unwrap());
    assert_eq!(client, 390, "the page was laid out at a phone's width");
    assert!(scroll <= client, "the page scrolls sideways at 390 px: {scroll} > {client}");

    // The screenshot a person would see on a phone.
    let shot = dir.join("report-fr-390.png");
    run_chromium(&fr_page, &["--window-size=390,844".into(), format!("--screenshot={}", shot.display())]);
    assert_eq!(png_size(&shot), (390, 844));
    assert!(std::fs::metadata(&shot).unwrap().len() > 20_000, "the screenshot has something on it");

    // The paper list, and --show-phones.
    let list = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(list.lines().count(), 1 + UNREACHED.len(), "{list}");
    assert!(list.contains("p10,+33*******10,Échec,Ce numéro n'utilise pas WhatsApp."), "{list}");
    assert!(!list.contains("+336123456"), "{list}");
    let shown = dir.join("report-shown.html");
    env.missive(&["report", "--campaign", CAMPAIGN, "--html", shown.to_str().unwrap(), "--show-phones"]).await.ok();
    let dom = rendered_dom(&shown);
    for n in [4, 7, 8, 10, 11, 12] {
        assert!(dom.contains(&format!("+336123456{n:02}")), "p{n:02}'s whole phone with --show-phones");
    }
    eprintln!("pages and screenshot in {} (chromium: {})", dir.display(), chromium.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_larger_than_one_batch_get_is_read_whole() {
    // 205 messages (three BatchGetItem calls of at most 100 keys; Query pages of 40), all
    // skipped by the real send handler for want of consent; five of the parents had replied
    // STOP, which their line says.
    let env = TestEnv::start().await;
    let twilio = fake_twilio().await;
    let stopped: Vec<u32> = (0..205).step_by(50).collect();
    for n in &stopped {
        env.set_consent(&phone(*n), ConsentState::OptedOut, ConsentSource::WhatsappReply, "SM-stop").await;
    }
    let handler = env.send_handler(&twilio, &[]).await;
    let bodies: Vec<String> = (0..205)
        .map(|n| {
            serde_json::json!({"v": 1, "message_id": format!("big:r{n:03}"), "to": phone(n), "campaign": "big",
                "recipient_id": format!("r{n:03}"), "template": {"content_sid": TEMPLATE}})
            .to_string()
        })
        .collect();
    for chunk in bodies.chunks(10) {
        let response = handler.handle(sqs_event(chunk), std::time::SystemTime::now() + Duration::from_secs(60)).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    assert!(twilio.messages().is_empty(), "nothing sent without consent");

    let csv = temp_dir().join("big.csv");
    let run = env
        .missive(&["report", "--campaign", "big", "--csv", csv.to_str().unwrap(), "--lang", "en", "--page-size", "40"])
        .await;
    run.ok();
    assert!(run.stdout.contains("(205 families not reached)"), "{}", run.stdout);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let ids: Vec<&str> = rows.iter().map(|row| &row[0]).collect();
    let expected: Vec<String> = (0..205).map(|n| format!("r{n:03}")).collect();
    assert_eq!(ids, expected, "every family once, in order");
    for (n, row) in rows.iter().enumerate() {
        let why = if stopped.contains(&(n as u32)) {
            "They asked to stop WhatsApp messages (STOP)."
        } else {
            "No agreement to receive the school's WhatsApp messages is on record."
        };
        assert_eq!((&row[1], &row[3]), (mask(&phone(n as u32)).as_str(), why), "row {n}");
    }
}

/// `+33*******07`: the country code's first two digits and the last two.
fn mask(phone: &str) -> String {
    format!("{}{}{}", &phone[..3], "*".repeat(phone.len() - 5), &phone[phone.len() - 2..])
}

#[tokio::test]
async fn bad_report_page_options_are_refused_naming_the_option() {
    let env = TestEnv::start().await;
    let page = temp_dir().join("page.html");
    let page = page.to_str().unwrap();
    let run = env.missive(&["report", "--campaign", CAMPAIGN, "--html", page, "--lang", "de"]).await;
    run.code(2);
    assert!(run.stderr.contains("expected fr or en") && run.stderr.contains("SCHOOL_LANG"), "{}", run.stderr);
    let run = env.missive(&["report", "--campaign", CAMPAIGN, "--html", page, "--timezone", "Mars/Olympus"]).await;
    run.code(2);
    assert!(run.stderr.contains("not an IANA time zone"), "{}", run.stderr);
    let run = env.missive(&["report", "--campaign", CAMPAIGN, "--show-phones"]).await;
    run.code(2);
    let run = env.missive(&["report", "--campaign", CAMPAIGN, "--html", page, "--watch"]).await;
    run.code(2);
    let run = env.missive(&["report", "--campaign", CAMPAIGN, "--html", "/nonexistent-dir/page.html"]).await;
    run.code(1);
    assert!(run.stderr.contains("--html /nonexistent-dir/page.html"), "{}", run.stderr);
    assert!(!Path::new(page).exists(), "nothing written by a refused command");

    // A campaign with nothing recorded still gets a page that says so.
    let run = env.missive(&["report", "--campaign", "no-such-trip", "--html", page]).await;
    run.ok();
    assert!(run.stderr.contains("no item of campaign no-such-trip recorded yet"), "{}", run.stderr);
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("Aucun message de cette campagne n&#39;est enregistré pour l&#39;instant."), "{html}");
}

#[tokio::test]
async fn the_page_tells_who_sent_and_who_cancelled_from_the_campaigns_table() {
    // A campaign recorded in the Campaigns table (as `bulk` records it), then cancelled
    // before `send` took its messages: the real handler records each `cancelled`, and the
    // page shows the funnel from what was enqueued, who started it and who cancelled it, why.
    let env = TestEnv::start().await;
    let campaigns = DynamoCampaigns::new(env.dynamo.clone(), &env.campaign_table);
    let now = chrono::Utc::now().timestamp();
    campaigns.record_enqueued("museum", "secretary@school", Some("Museum visit"), 3, now - 60).await.unwrap();
    let cancelled = campaigns.set_cancelled("museum", true, "head@school", "wrong date", now - 30).await.unwrap();
    assert!(cancelled.is_some_and(|item| item.is_cancelled()));
    let twilio = fake_twilio().await;
    let handler = env.send_handler(&twilio, &[]).await;
    let bodies: Vec<String> = (0..3)
        .map(|n| {
            serde_json::json!({"v": 1, "message_id": format!("museum:r{n}"), "to": phone(n), "campaign": "museum",
                "recipient_id": format!("r{n}"), "template": {"content_sid": TEMPLATE}})
            .to_string()
        })
        .collect();
    let response = handler.handle(sqs_event(&bodies), std::time::SystemTime::now() + Duration::from_secs(60)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(twilio.messages().is_empty(), "nothing sent for a cancelled campaign");

    let page = temp_dir().join("museum.html");
    let run = env.missive(&["report", "--campaign", "museum", "--html", page.to_str().unwrap(), "--lang", "en"]).await;
    run.ok();
    let html = std::fs::read_to_string(&page).unwrap();
    for text in
        ["Museum visit", "Sending started", "Campaign cancelled", "secretary@school", "head@school", "wrong date"]
    {
        assert!(html.contains(text), "{text:?} on the page");
    }
    let status = env.missive(&["report", "--campaign", "museum", "--json"]).await.ok().json();
    assert_eq!(status["by_status"]["cancelled"], 3, "{status}");
}
