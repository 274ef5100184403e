//! The SAM template (`infra/template.yaml`) against the code.
//!
//! The template repeats names the code owns: table keys and indexes (`missive::schema`), the
//! environment variables each function reads (`missive::config`), the binaries, the schedule,
//! and numbers that must agree with each other (timeouts, leases, visibility). Each test here
//! fails when the two disagree, and says where. Run with `cargo test -p missive --test template`.
//!
//! CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`, …) come through serde_yaml as
//! tagged values; `tagged` below reads them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use missive::config::{Env, SendConfig, SweepConfig, WebhookConfig, SEND_ENV_VARS, SWEEP_ENV_VARS, WEBHOOK_ENV_VARS};
use missive::schema::{Projection, TableDef, CAMPAIGNS, CONSENT, INBOX, MESSAGE_LOG};
use serde_yaml::{Mapping, Value};

// ---- the three functions --------------------------------------------------------------------

struct Function {
    logical_id: &'static str,
    binary: &'static str,
    reads: &'static [&'static str],
    /// Variables the template must set (the rest may be left to the code's defaults).
    required: &'static [&'static str],
}

const SEND: Function = Function {
    logical_id: "SendFunction",
    binary: "send",
    reads: SEND_ENV_VARS,
    required: &[
        "MESSAGE_LOG_TABLE",
        "CONSENT_TABLE",
        "CAMPAIGN_TABLE",
        "SEND_QUEUE_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_SECRET_ARN",
        "TWILIO_ENABLED",
        "TWILIO_TIMEOUT_MS",
        "LEASE_SECONDS",
        "STATUS_CALLBACK_URL",
    ],
};

const WEBHOOK: Function = Function {
    logical_id: "TwilioWebhookFunction",
    binary: "twilio-webhook",
    reads: WEBHOOK_ENV_VARS,
    required: &["MESSAGE_LOG_TABLE", "CONSENT_TABLE", "TWILIO_ACCOUNT_SID", "TWILIO_SECRET_ARN"],
};

const SWEEP: Function = Function {
    logical_id: "RetrySweepFunction",
    binary: "retry-sweep",
    reads: SWEEP_ENV_VARS,
    required: &["MESSAGE_LOG_TABLE", "SEND_QUEUE_URL"],
};

const FUNCTIONS: [&Function; 3] = [&SEND, &WEBHOOK, &SWEEP];

/// Variables that hold a credential: never set in the template (the secret's ARN is).
const SECRET_VARS: &[&str] = &["TWILIO_AUTH_TOKEN", "TWILIO_API_KEY_SECRET", "TWILIO_API_KEY_SID"];

/// EMF metrics each function writes (DESIGN.md, "Metrics and alarms"), by the `Function`
/// dimension's value.
const METRICS: &[(&str, &[&str])] = &[
    (
        "send",
        &[
            "Sent",
            "Retrying",
            "InDoubt",
            "Failed",
            "Rejected",
            "Skipped",
            "Expired",
            "Throttled",
            "Duplicate",
            "LeaseLost",
            "AccountError",
            "TwilioLatencyMs",
        ],
    ),
    (
        "twilio-webhook",
        &[
            "Delivered",
            "Read",
            "Undelivered",
            "OptOut",
            "OptIn",
            "SignatureRejected",
            "DuplicateCreate",
            "ReconcileMissed",
        ],
    ),
    ("retry-sweep", &["Due", "Enqueued", "EnqueueFailed", "LeftForNextRun"]),
];

// ---- reading the template -------------------------------------------------------------------

fn root_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `MISSIVE_TEMPLATE` points the tests at another copy (to try a change without touching
/// infra/); CodeUri paths stay relative to infra/.
fn template_path() -> PathBuf {
    match std::env::var_os("MISSIVE_TEMPLATE") {
        Some(path) => PathBuf::from(path),
        None => root_dir().join("infra").join("template.yaml"),
    }
}

fn template() -> Value {
    let path = template_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn mapping<'a>(v: &'a Value, what: &str) -> &'a Mapping {
    v.as_mapping().unwrap_or_else(|| panic!("{what}: expected a mapping, got {v:?}"))
}

fn resources(t: &Value) -> &Mapping {
    mapping(t.get("Resources").expect("template has no Resources"), "Resources")
}

fn resource<'a>(t: &'a Value, logical_id: &str) -> &'a Value {
    resources(t).get(logical_id).unwrap_or_else(|| panic!("template has no resource {logical_id}"))
}

fn props<'a>(t: &'a Value, logical_id: &str) -> &'a Value {
    resource(t, logical_id).get("Properties").unwrap_or_else(|| panic!("{logical_id} has no Properties"))
}

/// Follows a path of mapping keys.
fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, key| v.get(*key))
}

/// A short-form intrinsic function: (`Ref`, its argument) for `!Ref X`; also the long form
/// `{Ref: X}` / `{Fn::GetAtt: …}` (returned without `Fn::`).
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_owned(), &t.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, inner) = m.iter().next()?;
            let k = k.as_str()?;
            (k == "Ref" || k.starts_with("Fn::")).then(|| (k.trim_start_matches("Fn::").to_owned(), inner))
        }
        _ => None,
    }
}

/// `!Ref X` → `X`.
fn ref_target(v: &Value) -> Option<&str> {
    match tagged(v)? {
        (tag, Value::String(s)) if tag == "Ref" => Some(s.as_str()),
        _ => None,
    }
}

/// `!GetAtt X.Attr` or `!GetAtt [X, Attr]` → (`X`, `Attr`).
fn getatt_target(v: &Value) -> Option<(String, String)> {
    let (tag, inner) = tagged(v)?;
    if tag != "GetAtt" {
        return None;
    }
    match inner {
        Value::String(s) => {
            let (res, attr) = s.split_once('.')?;
            Some((res.to_owned(), attr.to_owned()))
        }
        Value::Sequence(seq) if seq.len() == 2 => Some((seq[0].as_str()?.to_owned(), seq[1].as_str()?.to_owned())),
        _ => None,
    }
}

/// A literal scalar as text (strings, numbers, booleans).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    scalar(v)?.parse().ok()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// Every string anywhere below `v`, tags included (for "does it mention …" checks).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(seq) => seq.iter().for_each(|x| strings(x, out)),
        Value::Mapping(m) => m.iter().for_each(|(k, x)| {
            strings(k, out);
            strings(x, out)
        }),
        Value::Tagged(t) => strings(&t.value, out),
        _ => {}
    }
}

fn parameter<'a>(t: &'a Value, name: &str) -> Option<&'a Value> {
    t.get("Parameters")?.get(name)
}

/// Collects disagreements, so that one run lists them all.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.0.push(msg());
        }
    }

    fn push(&mut self, msg: String) {
        self.0.push(msg);
    }

    fn assert_none(self, what: &str) {
        assert!(self.0.is_empty(), "{what}: infra/template.yaml and the code disagree:\n  - {}", self.0.join("\n  - "));
    }
}

// ---- tables ---------------------------------------------------------------------------------

fn check_table(t: &Value, def: &TableDef, p: &mut Problems) {
    let id = def.logical_id;
    let Some(res) = resources(t).get(id) else {
        p.push(format!("no resource {id}"));
        return;
    };
    p.check(str_at(res, &["Type"]) == Some("AWS::DynamoDB::Table"), || format!("{id}: not an AWS::DynamoDB::Table"));
    p.check(str_at(res, &["DeletionPolicy"]) == Some("Retain"), || {
        format!("{id}: DeletionPolicy should be Retain (the audit log and the opt-outs outlive the stack)")
    });
    let props = &res["Properties"];

    // Keys and types: every attribute that is a key of the table or of an index, defined once,
    // with the type schema.rs gives it, and nothing else (CloudFormation refuses extras).
    let mut expected: BTreeMap<&str, &str> = BTreeMap::new();
    let mut add = |p: &mut Problems, (name, ty): (&'static str, missive::schema::KeyType)| {
        if let Some(prev) = expected.insert(name, ty.as_str()) {
            p.check(prev == ty.as_str(), || format!("schema.rs: {name} has two key types in {id}"));
        }
    };
    add(p, def.partition);
    if let Some(sort) = def.sort {
        add(p, sort);
    }
    for idx in def.indexes {
        add(p, idx.partition);
        add(p, idx.sort);
    }
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    for a in props.get("AttributeDefinitions").and_then(Value::as_sequence).into_iter().flatten() {
        let name = str_at(a, &["AttributeName"]).unwrap_or("?").to_owned();
        let ty = str_at(a, &["AttributeType"]).unwrap_or("?").to_owned();
        p.check(defined.insert(name.clone(), ty).is_none(), || format!("{id}: {name} defined twice"));
    }
    let defined_ref: BTreeMap<&str, &str> = defined.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    p.check(defined_ref == expected, || {
        format!("{id}: AttributeDefinitions {defined_ref:?}, schema.rs has {expected:?}")
    });

    let key_schema = |ks: Option<&Value>| -> Vec<(String, String)> {
        ks.and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|k| {
                (
                    str_at(k, &["AttributeName"]).unwrap_or("?").to_owned(),
                    str_at(k, &["KeyType"]).unwrap_or("?").to_owned(),
                )
            })
            .collect()
    };
    let table_keys = key_schema(props.get("KeySchema"));
    let mut want_keys = vec![(def.partition.0.to_owned(), "HASH".to_owned())];
    want_keys.extend(def.sort.map(|(name, _)| (name.to_owned(), "RANGE".to_owned())));
    p.check(table_keys == want_keys, || format!("{id}: KeySchema {table_keys:?}, schema.rs has {want_keys:?}"));

    // Indexes: the same names, no more, no less; keys and projections.
    let gsis: Vec<&Value> = props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let names: BTreeSet<&str> = gsis.iter().filter_map(|g| str_at(g, &["IndexName"])).collect();
    let want_names: BTreeSet<&str> = def.indexes.iter().map(|i| i.name).collect();
    p.check(names == want_names && gsis.len() == def.indexes.len(), || {
        format!("{id}: indexes {names:?}, schema.rs has {want_names:?}")
    });
    for idx in def.indexes {
        let Some(g) = gsis.iter().find(|g| str_at(g, &["IndexName"]) == Some(idx.name)) else {
            continue;
        };
        let keys = key_schema(g.get("KeySchema"));
        let want = vec![(idx.partition.0.to_owned(), "HASH".to_owned()), (idx.sort.0.to_owned(), "RANGE".to_owned())];
        p.check(keys == want, || format!("{id}/{}: KeySchema {keys:?}, schema.rs has {want:?}", idx.name));
        let ptype = str_at(g, &["Projection", "ProjectionType"]);
        let non_key: Vec<&str> = at(g, &["Projection", "NonKeyAttributes"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match idx.projection {
            Projection::All => p.check(ptype == Some("ALL") && non_key.is_empty(), || {
                format!("{id}/{}: projection {ptype:?} {non_key:?}, schema.rs has ALL", idx.name)
            }),
            Projection::Include(attrs) => {
                let got: BTreeSet<&str> = non_key.iter().copied().collect();
                let want: BTreeSet<&str> = attrs.iter().copied().collect();
                p.check(ptype == Some("INCLUDE") && got == want && non_key.len() == attrs.len(), || {
                    format!("{id}/{}: projection {ptype:?} {non_key:?}, schema.rs has INCLUDE {attrs:?}", idx.name)
                })
            }
        }
    }

    // TTL.
    let ttl = props.get("TimeToLiveSpecification");
    match def.ttl_attribute {
        Some(attr) => p.check(
            ttl.and_then(|t| str_at(t, &["AttributeName"])) == Some(attr)
                && ttl.and_then(|t| t.get("Enabled")).and_then(Value::as_bool) == Some(true),
            || format!("{id}: TTL should be enabled on {attr}, got {ttl:?}"),
        ),
        None => p.check(ttl.is_none(), || format!("{id}: schema.rs has no TTL, the template sets {ttl:?}")),
    }

    // What the issue asks of every table.
    p.check(str_at(props, &["BillingMode"]) == Some("PAY_PER_REQUEST"), || format!("{id}: not on-demand"));
    p.check(
        at(props, &["PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled"]).and_then(Value::as_bool)
            == Some(true),
        || format!("{id}: point-in-time recovery off"),
    );
    p.check(at(props, &["SSESpecification", "SSEEnabled"]).and_then(Value::as_bool) == Some(true), || {
        format!("{id}: SSESpecification.SSEEnabled is not true")
    });
}

#[test]
fn tables_match_schema() {
    let t = template();
    let mut p = Problems::default();
    let known = [&MESSAGE_LOG, &CONSENT, &CAMPAIGNS, &INBOX];
    for def in known {
        check_table(&t, def, &mut p);
    }
    // No other table: the code knows these.
    for (id, res) in resources(&t) {
        let id = id.as_str().unwrap_or("?");
        if str_at(res, &["Type"]) == Some("AWS::DynamoDB::Table") {
            p.check(known.iter().any(|def| def.logical_id == id), || {
                format!("{id}: a table src/schema.rs does not know")
            });
        }
    }
    p.assert_none("tables");
}

// ---- functions and their environment --------------------------------------------------------

fn env_vars<'a>(t: &'a Value, f: &Function) -> &'a Mapping {
    at(props(t, f.logical_id), &["Environment", "Variables"])
        .map(|v| mapping(v, "Environment.Variables"))
        .unwrap_or_else(|| panic!("{} sets no Environment.Variables", f.logical_id))
}

#[test]
fn every_function_is_known() {
    let t = template();
    let mut p = Problems::default();
    for (id, res) in resources(&t) {
        let id = id.as_str().unwrap_or("?");
        let ty = str_at(res, &["Type"]).unwrap_or("");
        if ty == "AWS::Serverless::Function" || ty == "AWS::Lambda::Function" {
            p.check(FUNCTIONS.iter().any(|f| f.logical_id == id), || {
                format!("{id}: a function this test does not know (add it to FUNCTIONS)")
            });
        }
    }
    p.assert_none("functions");
}

#[test]
fn environment_is_exactly_what_each_function_reads() {
    let t = template();
    let mut p = Problems::default();
    for f in FUNCTIONS {
        let vars = env_vars(&t, f);
        let set: BTreeSet<&str> = vars.keys().filter_map(Value::as_str).collect();
        for name in &set {
            p.check(f.reads.contains(name), || {
                format!("{}: sets {name}, which {} never reads (config.rs)", f.logical_id, f.binary)
            });
            p.check(!SECRET_VARS.contains(name), || {
                format!("{}: sets the credential {name}; pass TWILIO_SECRET_ARN instead", f.logical_id)
            });
        }
        for name in f.required {
            p.check(set.contains(name), || format!("{}: does not set {name}", f.logical_id));
            p.check(f.reads.contains(name), || {
                format!("this test requires {name} of {}, which config.rs does not list", f.binary)
            });
        }
    }
    // A deployed send never falls back to a dry run silently.
    let enabled = env_vars(&t, &SEND).get("TWILIO_ENABLED").and_then(scalar);
    p.check(enabled.as_deref() == Some("true"), || {
        format!("SendFunction: TWILIO_ENABLED is {enabled:?}, not \"true\"")
    });
    // The secret's ARN comes from a parameter, and the parameter is no credential itself.
    for f in [&SEND, &WEBHOOK] {
        let arn = env_vars(&t, f).get("TWILIO_SECRET_ARN").and_then(ref_target);
        p.check(arn.is_some_and(|a| parameter(&t, a).is_some()), || {
            format!("{}: TWILIO_SECRET_ARN should be !Ref of a parameter, got {arn:?}", f.logical_id)
        });
    }
    p.assert_none("environment");
}

/// The value a variable takes with the template's defaults; `None` when it depends on a
/// resource (a table name, a URL), then a placeholder of the right shape is used.
fn env_value(t: &Value, v: &Value) -> Option<String> {
    if let Some(s) = scalar(v) {
        return Some(s);
    }
    let name = ref_target(v)?;
    let param = parameter(t, name)?;
    param.get("Default").and_then(scalar).or_else(|| sample_parameter(name))
}

/// Values for parameters without a default, in the shape their AllowedPattern demands.
fn sample_parameter(name: &str) -> Option<String> {
    match name {
        "TwilioAccountSid" => Some(format!("AC{}", "0".repeat(32))),
        "TwilioSecretArn" => Some("arn:aws:secretsmanager:eu-west-3:123456789012:secret:missive/twilio-AbCdEf".into()),
        _ => None,
    }
}

fn placeholder(var: &str) -> String {
    if var.ends_with("_URL") {
        "https://abcdefghijklmnopqrstuvwxyz012345.lambda-url.eu-west-3.on.aws/twilio/status".into()
    } else {
        format!("placeholder-{}", var.to_ascii_lowercase())
    }
}

/// Values worth trying for a parameter: its default, bounds and allowed values.
fn parameter_values(param: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["Default", "MinValue", "MaxValue"] {
        if let Some(v) = param.get(key).and_then(scalar) {
            out.push(v);
        }
    }
    for v in param.get("AllowedValues").and_then(Value::as_sequence).into_iter().flatten() {
        if let Some(v) = scalar(v) {
            out.push(v);
        }
    }
    out
}

/// Runs the function's own configuration reader over the template's environment: with the
/// defaults, and with every value each bound parameter allows. A value the code refuses (out
/// of its range, an unknown policy name) fails here rather than at a deployed cold start.
fn check_config(t: &Value, f: &Function, from_env: &dyn Fn(&Env) -> Result<(), String>, p: &mut Problems) {
    let vars = env_vars(t, f);
    let base: BTreeMap<String, String> = vars
        .iter()
        .filter_map(|(k, v)| {
            let k = k.as_str()?.to_owned();
            let value = env_value(t, v).unwrap_or_else(|| placeholder(&k));
            Some((k, value))
        })
        .collect();
    let run = |env: &BTreeMap<String, String>| from_env(&Env::from_fn(|name| env.get(name).cloned()));
    if let Err(e) = run(&base) {
        p.push(format!("{}: the code refuses the template's defaults: {e}", f.logical_id));
    }
    for (k, v) in vars {
        let (Some(k), Some(param)) = (k.as_str(), ref_target(v).and_then(|name| parameter(t, name))) else {
            continue;
        };
        for value in parameter_values(param) {
            let mut env = base.clone();
            env.insert(k.to_owned(), value.clone());
            if let Err(e) = run(&env) {
                p.push(format!(
                    "{}: the parameter behind {k} allows {value:?}, the code refuses it: {e}",
                    f.logical_id
                ));
            }
        }
    }
}

#[test]
fn the_code_accepts_the_template_values() {
    let t = template();
    let mut p = Problems::default();
    check_config(&t, &SEND, &|env| SendConfig::from_env(env).map(|_| ()).map_err(|e| e.to_string()), &mut p);
    check_config(&t, &WEBHOOK, &|env| WebhookConfig::from_env(env).map(|_| ()).map_err(|e| e.to_string()), &mut p);
    check_config(&t, &SWEEP, &|env| SweepConfig::from_env(env).map(|_| ()).map_err(|e| e.to_string()), &mut p);
    p.assert_none("configuration values");
}

#[test]
fn functions_build_the_workspace_binaries() {
    let t = template();
    let mut p = Problems::default();
    for f in FUNCTIONS {
        let res = resource(&t, f.logical_id);
        let id = f.logical_id;
        p.check(str_at(res, &["Type"]) == Some("AWS::Serverless::Function"), || format!("{id}: not a SAM function"));
        p.check(str_at(res, &["Metadata", "BuildMethod"]) == Some("rust-cargolambda"), || {
            format!("{id}: Metadata.BuildMethod is not rust-cargolambda")
        });
        let binary = str_at(res, &["Metadata", "BuildProperties", "Binary"]);
        p.check(binary == Some(f.binary), || format!("{id}: builds binary {binary:?}, expected {:?}", f.binary));
        let props = &res["Properties"];
        p.check(str_at(props, &["Runtime"]) == Some("provided.al2023"), || {
            format!("{id}: Runtime is not provided.al2023")
        });
        p.check(str_at(props, &["Handler"]) == Some("bootstrap"), || format!("{id}: Handler is not bootstrap"));
        let arch: Vec<&str> = props
            .get("Architectures")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        p.check(arch == ["arm64"], || format!("{id}: Architectures {arch:?}, expected [arm64]"));
        p.check(str_at(props, &["LoggingConfig", "LogFormat"]) == Some("JSON"), || {
            format!("{id}: LogFormat is not JSON")
        });
        p.check(props.get("Timeout").and_then(number).is_some(), || format!("{id}: no literal Timeout"));

        // CodeUri is the package that defines the binary (cargo lambda runs `--bin <name>`
        // there), relative to infra/.
        match str_at(props, &["CodeUri"]) {
            None => p.push(format!("{id}: no CodeUri")),
            Some(code_uri) => {
                let manifest = root_dir().join("infra").join(code_uri).join("Cargo.toml");
                match std::fs::read_to_string(&manifest) {
                    Err(e) => p.push(format!("{id}: CodeUri {code_uri}: {}: {e}", manifest.display())),
                    Ok(text) => p.check(defines_bin(&text, f.binary, &manifest), || {
                        format!("{id}: {} defines no binary {:?}", manifest.display(), f.binary)
                    }),
                }
            }
        }
    }
    p.assert_none("functions");
}

/// Whether a Cargo manifest defines a binary `bin`: a `[[bin]]` named so, or a package so
/// named with a `src/main.rs`.
fn defines_bin(manifest: &str, bin: &str, path: &Path) -> bool {
    let mut section = String::new();
    let mut package_name = None;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if key.trim() == "name" {
            if section == "[[bin]]" && value == bin {
                return true;
            }
            if section == "[package]" {
                package_name = Some(value.to_owned());
            }
        }
    }
    package_name.as_deref() == Some(bin) && path.parent().is_some_and(|dir| dir.join("src/main.rs").exists())
}

#[test]
fn sweep_runs_every_10_minutes() {
    let t = template();
    let events = mapping(
        at(props(&t, SWEEP.logical_id), &["Events"]).expect("RetrySweepFunction has no Events"),
        "RetrySweepFunction.Events",
    );
    let schedules: Vec<&str> = events
        .values()
        .filter(|e| matches!(str_at(e, &["Type"]), Some("Schedule" | "ScheduleV2")))
        .filter_map(|e| {
            str_at(e, &["Properties", "Schedule"]).or_else(|| str_at(e, &["Properties", "ScheduleExpression"]))
        })
        .collect();
    assert_eq!(schedules, ["rate(10 minutes)"], "RetrySweepFunction: one schedule, rate(10 minutes)");
    let sweep_timeout = props(&t, SWEEP.logical_id).get("Timeout").and_then(number).expect("sweep Timeout");
    assert!(sweep_timeout < 600, "retry-sweep's Timeout ({sweep_timeout} s) must stay under the 10-minute period");
}

// ---- the queue, the event source and the timeouts -------------------------------------------

/// The SQS event of `send`.
fn send_sqs_event(t: &Value) -> &Value {
    let events = mapping(at(props(t, SEND.logical_id), &["Events"]).expect("SendFunction has no Events"), "Events");
    let sqs: Vec<&Value> = events.values().filter(|e| str_at(e, &["Type"]) == Some("SQS")).collect();
    assert_eq!(sqs.len(), 1, "SendFunction: exactly one SQS event");
    &sqs[0]["Properties"]
}

/// A number property that may be a literal or `!Ref` of a parameter: (default, largest allowed).
fn number_or_parameter(t: &Value, v: Option<&Value>) -> Option<(u64, u64)> {
    let v = v?;
    if let Some(n) = number(v) {
        return Some((n, n));
    }
    let param = parameter(t, ref_target(v)?)?;
    let default = param.get("Default").and_then(number)?;
    let max = param
        .get("MaxValue")
        .and_then(number)
        .or_else(|| param.get("AllowedValues")?.as_sequence()?.iter().filter_map(number).max())?;
    Some((default, max))
}

#[test]
fn queue_and_timeouts_agree() {
    let t = template();
    let mut p = Problems::default();
    let send = props(&t, SEND.logical_id);
    let timeout = send.get("Timeout").and_then(number).expect("SendFunction: literal Timeout");
    let event = send_sqs_event(&t);

    // The event source reads the queue we size, and reports partial batch failures.
    let queue_id =
        event.get("Queue").and_then(getatt_target).map(|(res, _)| res).expect("SQS event: Queue: !GetAtt <queue>.Arn");
    let types: Vec<&str> = event
        .get("FunctionResponseTypes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    p.check(types.contains(&"ReportBatchItemFailures"), || {
        format!("SQS event: FunctionResponseTypes {types:?} lacks ReportBatchItemFailures")
    });
    p.check(at(event, &["ScalingConfig", "MaximumConcurrency"]).is_some(), || {
        "SQS event: no ScalingConfig.MaximumConcurrency (it paces Twilio)".into()
    });
    let (_, batch_max) = number_or_parameter(&t, event.get("BatchSize")).unwrap_or((10, 10));
    let (_, window_max) = number_or_parameter(&t, event.get("MaximumBatchingWindowInSeconds")).unwrap_or((0, 0));
    p.check(batch_max <= 10 || window_max > 0, || "BatchSize above 10 needs a batching window".into());

    // Visibility: at least 6 x the function's timeout, plus the longest batching window
    // (Lambda's advice for SQS event sources).
    let queue = props(&t, &queue_id);
    let visibility = queue.get("VisibilityTimeout").and_then(number).unwrap_or(30);
    p.check(visibility >= 6 * timeout + window_max, || {
        format!(
            "{queue_id}: VisibilityTimeout {visibility} < 6 x send Timeout {timeout} + batching window {window_max}"
        )
    });

    // Redrive: a DLQ that exists, after at least 5 receives.
    let redrive = queue.get("RedrivePolicy");
    let receives = redrive.and_then(|r| r.get("maxReceiveCount")).and_then(number);
    p.check(receives.is_some_and(|n| n >= 5), || format!("{queue_id}: maxReceiveCount {receives:?}, expected >= 5"));
    let dlq = redrive.and_then(|r| r.get("deadLetterTargetArn")).and_then(getatt_target);
    match dlq {
        Some((dlq_id, _)) => p.check(str_at(resource(&t, &dlq_id), &["Type"]) == Some("AWS::SQS::Queue"), || {
            format!("{queue_id}: the DLQ {dlq_id} is not a queue")
        }),
        None => p.push(format!("{queue_id}: RedrivePolicy.deadLetterTargetArn is not !GetAtt <dlq>.Arn")),
    }

    // SEND_QUEUE_URL of send and of the sweep is this queue.
    for f in [&SEND, &SWEEP] {
        let url = env_vars(&t, f).get("SEND_QUEUE_URL").and_then(ref_target);
        p.check(url == Some(queue_id.as_str()), || {
            format!("{}: SEND_QUEUE_URL is {url:?}, not !Ref {queue_id}", f.logical_id)
        });
    }

    // The lease outlives any take: LEASE_SECONDS >= Timeout + TWILIO_TIMEOUT_MS + 30 s.
    let vars = env_vars(&t, &SEND);
    let lease = vars.get("LEASE_SECONDS").and_then(number);
    let twilio_ms = vars.get("TWILIO_TIMEOUT_MS").and_then(number);
    match (lease, twilio_ms) {
        (Some(lease), Some(ms)) => p.check(lease >= timeout + ms.div_ceil(1000) + 30, || {
            format!("LEASE_SECONDS {lease} < Timeout {timeout} + TWILIO_TIMEOUT_MS {ms} / 1000 + 30")
        }),
        _ => p.push(format!(
            "SendFunction: LEASE_SECONDS ({lease:?}) and TWILIO_TIMEOUT_MS ({twilio_ms:?}) must be literal numbers"
        )),
    }
    // The handler stops claiming with less than TWILIO_TIMEOUT_MS + 5 s left: some time must remain.
    if let Some(ms) = twilio_ms {
        p.check(timeout * 1000 > ms + 5_000, || {
            format!("send Timeout {timeout} s leaves no time for one Twilio call ({ms} ms + 5 s)")
        });
    }

    // send re-enqueues into its own trigger queue.
    p.check(str_at(send, &["RecursiveLoop"]) == Some("Allow"), || "SendFunction: RecursiveLoop is not Allow".into());
    p.assert_none("queue and timeouts");
}

// ---- the webhook ----------------------------------------------------------------------------

#[test]
fn webhook_url_feeds_status_callback() {
    let t = template();
    let mut p = Problems::default();
    let webhook = props(&t, WEBHOOK.logical_id);
    p.check(str_at(webhook, &["FunctionUrlConfig", "AuthType"]) == Some("NONE"), || {
        "TwilioWebhookFunction: FunctionUrlConfig.AuthType is not NONE (Twilio cannot sign with SigV4)".into()
    });

    // STATUS_CALLBACK_URL: built from the webhook's URL, on the /twilio/status route.
    let url_resource = format!("{}Url", WEBHOOK.logical_id);
    let callback = env_vars(&t, &SEND).get("STATUS_CALLBACK_URL").expect("SendFunction: STATUS_CALLBACK_URL");
    let mut texts = Vec::new();
    strings(callback, &mut texts);
    p.check(texts.iter().any(|s| s.contains(&format!("${{{url_resource}.FunctionUrl}}"))), || {
        format!("STATUS_CALLBACK_URL does not use ${{{url_resource}.FunctionUrl}}: {callback:?}")
    });
    let subs: Vec<&String> = texts.iter().filter(|s| s.contains("${")).collect();
    p.check(
        !subs.is_empty() && subs.iter().all(|s| s.ends_with("/twilio/status") || s.ends_with("}twilio/status")),
        || format!("STATUS_CALLBACK_URL: every branch should end with the /twilio/status route: {subs:?}"),
    );

    // Outputs: the base URL and both routes.
    let outputs = mapping(t.get("Outputs").expect("no Outputs"), "Outputs");
    let mut out_texts = Vec::new();
    strings(&Value::Mapping(outputs.clone()), &mut out_texts);
    for route in ["twilio/status", "twilio/inbound"] {
        p.check(out_texts.iter().any(|s| s.contains(route)), || format!("no output gives the {route} URL"));
    }
    for key in ["SendQueueUrl", "DeadLetterQueueUrl", "MessageLogTableName", "ConsentTableName", "WebhookUrl"] {
        p.check(outputs.contains_key(key), || format!("no output {key}"));
    }
    p.assert_none("webhook");
}

// ---- alarms, IAM, checkov -------------------------------------------------------------------

#[test]
fn alarms_read_the_metrics_the_code_writes() {
    let t = template();
    let mut p = Problems::default();
    let mut alarmed: BTreeSet<(String, String)> = BTreeSet::new();
    for (id, res) in resources(&t) {
        let id = id.as_str().unwrap_or("?");
        if str_at(res, &["Type"]) != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let props = &res["Properties"];
        p.check(props.get("AlarmActions").is_some(), || format!("{id}: no AlarmActions"));
        if str_at(props, &["Namespace"]) != Some("Missive") {
            continue;
        }
        let metric = str_at(props, &["MetricName"]).unwrap_or("?");
        let dims: Vec<(&str, Option<&str>)> = props
            .get("Dimensions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(|d| (str_at(d, &["Name"]).unwrap_or("?"), str_at(d, &["Value"])))
            .collect();
        let function = match dims.as_slice() {
            [("Function", Some(f))] => *f,
            _ => {
                p.push(format!("{id}: Missive metrics have one dimension, Function = <binary>; got {dims:?}"));
                continue;
            }
        };
        match METRICS.iter().find(|(f, _)| *f == function) {
            None => p.push(format!("{id}: Function = {function:?} is not a binary")),
            Some((_, names)) => p.check(names.contains(&metric), || {
                format!("{id}: {function} writes no metric {metric:?} (DESIGN.md, Metrics and alarms)")
            }),
        }
        alarmed.insert((function.to_owned(), metric.to_owned()));
    }
    for (function, metric) in [("send", "AccountError"), ("send", "Failed"), ("twilio-webhook", "DuplicateCreate")] {
        p.check(alarmed.contains(&(function.to_owned(), metric.to_owned())), || {
            format!("no alarm on {metric} of {function}")
        });
    }
    p.assert_none("alarms");
}

#[test]
fn iam_is_scoped() {
    let t = template();
    let mut p = Problems::default();
    for (id, res) in resources(&t) {
        let id = id.as_str().unwrap_or("?");
        if str_at(res, &["Type"]) != Some("AWS::IAM::Role") {
            continue;
        }
        for policy in at(res, &["Properties", "Policies"]).and_then(Value::as_sequence).into_iter().flatten() {
            for st in at(policy, &["PolicyDocument", "Statement"]).and_then(Value::as_sequence).into_iter().flatten() {
                let mut actions = Vec::new();
                strings(st.get("Action").unwrap_or(&Value::Null), &mut actions);
                for a in &actions {
                    p.check(!a.contains('*'), || format!("{id}: wildcard action {a}"));
                }
                let resource = st.get("Resource").unwrap_or(&Value::Null);
                let literal: Vec<&str> = match resource {
                    Value::String(s) => vec![s.as_str()],
                    Value::Sequence(seq) => seq.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                p.check(!literal.iter().any(|r| r.contains('*')), || format!("{id}: wildcard resource {literal:?}"));
                if actions.iter().any(|a| a == "secretsmanager:GetSecretValue") {
                    let arn = ref_target(resource);
                    p.check(arn.is_some_and(|a| parameter(&t, a).is_some()), || {
                        format!("{id}: GetSecretValue should be on !Ref <the secret ARN parameter>, got {resource:?}")
                    });
                }
            }
        }
    }
    p.assert_none("IAM");
}

#[test]
fn checkov_skips_give_their_reason() {
    let t = template();
    let mut p = Problems::default();
    for (id, res) in resources(&t) {
        let id = id.as_str().unwrap_or("?");
        for skip in at(res, &["Metadata", "checkov", "skip"]).and_then(Value::as_sequence).into_iter().flatten() {
            let check = str_at(skip, &["id"]).unwrap_or("?");
            let reason = str_at(skip, &["comment"]).unwrap_or("").trim();
            p.check(check.starts_with("CKV"), || format!("{id}: checkov skip without a check id: {skip:?}"));
            p.check(reason.len() >= 20, || format!("{id}: checkov skip {check} without a reason"));
        }
    }
    p.assert_none("checkov skips");
}
