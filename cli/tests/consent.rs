//! `missive consent import | set | show` and the precedence rules.

mod common;

use common::*;
use missive::domain::consent::{ConsentSource, ConsentState};

#[tokio::test]
async fn import_records_rows_and_never_undoes_a_parents_opt_out() {
    let env = TestEnv::start().await;
    env.set_consent(&phone(21), ConsentState::OptedOut, ConsentSource::WhatsappReply, "SM21").await;
    env.set_consent(&phone(22), ConsentState::OptedOut, ConsentSource::Twilio21610, "21610").await;
    env.set_consent(&phone(23), ConsentState::OptedIn, ConsentSource::CsvImport, "old.csv:2").await;
    env.set_consent(&phone(25), ConsentState::OptedOut, ConsentSource::Erasure, "erasure").await;
    let file = write_file(
        "consent.csv",
        &format!(
            "phone,optin,evidence\n{},true,\n{},TRUE,form 12\n{},true,\n{},false,\n{},true,\n{},false,\n",
            human_phone(20),
            phone(21),
            phone(22),
            phone(23),
            phone(25),
            phone(21)
        ),
    );
    // Line 7 repeats a phone: the file is refused whole.
    let run = env.missive(&["consent", "import", file.to_str().unwrap()]).await;
    run.code(4);
    assert!(run.stderr.contains("line 7: phone: already on line 3"), "{}", run.stderr);
    assert!(env.consent_item(&phone(20)).await.is_none(), "nothing recorded");

    let run = env.missive(&["consent", "import", file.to_str().unwrap(), "--skip-invalid", "--json"]).await;
    run.ok();
    let out = run.json();
    assert_eq!((out["recorded"].as_u64(), out["unchanged"].as_u64()), (Some(2), Some(0)), "{out}");
    let left: Vec<u64> = out["left_alone"].as_array().unwrap().iter().map(|l| l["line"].as_u64().unwrap()).collect();
    assert_eq!(left, [3, 4, 6], "whatsapp-reply, twilio-21610 and erasure are left alone: {out}");
    assert_eq!(out["errors"][0]["line"], 7);

    let p20 = env.consent_item(&phone(20)).await.unwrap();
    assert_eq!(
        (p20.state.as_deref().unwrap_or_default(), p20.source.as_deref(), p20.evidence.as_deref()),
        ("opted_in", Some("csv-import"), Some("consent.csv:2"))
    );
    let p23 = env.consent_item(&phone(23)).await.unwrap();
    assert_eq!(
        (p23.state.as_deref().unwrap_or_default(), p23.history.len()),
        ("opted_out", 2),
        "a school-side record is updated"
    );
    for (n, source) in [(21, "whatsapp-reply"), (22, "twilio-21610"), (25, "erasure")] {
        let item = env.consent_item(&phone(n)).await.unwrap();
        assert_eq!((item.state.as_deref().unwrap_or_default(), item.source.as_deref()), ("opted_out", Some(source)));
    }

    // A bad value names the column and the line.
    let bad = write_file("bad.csv", &format!("phone,optin\n{},maybe\n", phone(26)));
    let run = env.missive(&["consent", "import", bad.to_str().unwrap()]).await;
    run.code(4);
    assert!(run.stderr.contains("bad.csv: line 2: optin: expected true or false, got \"maybe\""), "{}", run.stderr);
    let missing = write_file("missing.csv", &format!("number,optin\n{},true\n", phone(26)));
    let run = env.missive(&["consent", "import", missing.to_str().unwrap()]).await;
    run.code(4);
    assert!(run.stderr.contains("the column \"phone\" is missing"), "{}", run.stderr);
}

#[tokio::test]
async fn set_undoes_a_parents_opt_out_only_with_evidence() {
    let env = TestEnv::start().await;
    let p = phone(30);
    env.set_consent(&p, ConsentState::OptedOut, ConsentSource::WhatsappReply, "SM30").await;
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (&["--optin"], 6, "opted_out", "whatsapp-reply"),
        (&["--optin", "--evidence", "  "], 6, "opted_out", "whatsapp-reply"),
        (&["--optin", "--evidence", "signed form, 24 Nov"], 0, "opted_in", "cli"),
        (&["--optout"], 0, "opted_out", "cli"),
        (&["--optin"], 0, "opted_in", "cli"),
    ];
    for (flags, code, state, source) in cases {
        let run = env.missive(&[&["consent", "set", "--phone", &p], *flags].concat()).await;
        run.code(*code);
        if *code == 6 {
            assert!(run.stderr.contains("--evidence"), "{}", run.stderr);
        }
        let item = env.consent_item(&p).await.unwrap();
        assert_eq!(
            (item.state.as_deref().unwrap_or_default(), item.source.as_deref()),
            (*state, Some(*source)),
            "{flags:?}"
        );
    }
    let item = env.consent_item(&p).await.unwrap();
    assert_eq!(item.history.len(), 4);
    assert_eq!(item.history[1].evidence, "signed form, 24 Nov");

    let run = env.missive(&["consent", "set", "--phone", "07 12 34 56 78", "--optin"]).await;
    run.code(2);
    assert!(run.stderr.contains("--phone: not a valid phone number"), "{}", run.stderr);
}

#[tokio::test]
async fn set_keeps_an_erasure_until_an_opt_in_with_evidence() {
    let env = TestEnv::start().await;
    let p = phone(31);
    env.set_consent(&p, ConsentState::OptedOut, ConsentSource::Erasure, "erasure").await;
    // An opt-out asks what the erasure already says: exit 0, the bare record kept as it is.
    let out = env.missive(&["consent", "set", "--phone", &p, "--optout", "--json"]).await.ok().json();
    assert_eq!((out["unchanged"].as_bool(), out["source"].as_str()), (Some(true), Some("erasure")), "{out}");
    let item = env.consent_item(&p).await.unwrap();
    assert_eq!((item.state.as_deref().unwrap_or_default(), item.source.as_deref()), ("opted_out", Some("erasure")));
    let run = env.missive(&["consent", "set", "--phone", &p, "--optin"]).await;
    run.code(6);
    assert!(run.stderr.contains("erased"), "{}", run.stderr);
    env.missive(&["consent", "set", "--phone", &p, "--optin", "--evidence", "new form, 3 Dec"]).await.ok();
    let item = env.consent_item(&p).await.unwrap();
    assert_eq!((item.state.as_deref().unwrap_or_default(), item.source.as_deref()), ("opted_in", Some("cli")));
}

#[tokio::test]
async fn show_prints_the_record_and_its_history() {
    let env = TestEnv::start().await;
    let p = phone(40);
    env.set_consent(&p, ConsentState::OptedIn, ConsentSource::CsvImport, "parents.csv:4").await;
    env.set_consent(&p, ConsentState::OptedOut, ConsentSource::WhatsappReply, "SM40").await;
    let run = env.missive(&["consent", "show", "--phone", &human_phone(40)]).await;
    run.ok();
    for text in ["+33*******40: opted_out since", "source   whatsapp-reply", "parents.csv:4", "SM40"] {
        assert!(run.stdout.contains(text), "{text:?} in {}", run.stdout);
    }
    assert!(!run.stdout.contains(&p));
    let out = env.missive(&["consent", "show", "--phone", &p, "--json", "--show-phone"]).await.ok().json();
    assert_eq!(out["phone"], p);
    assert_eq!(out["state"], "opted_out");
    assert_eq!(out["history"].as_array().unwrap().len(), 2);
    assert_eq!(out["history"][0]["source"], "csv-import");

    let run = env.missive(&["consent", "show", "--phone", &phone(41)]).await;
    run.code(3);
}
