//! The moto server a test talks to. `make test` starts one and exports `AWS_ENDPOINT_URL`;
//! without it, the first test of a process starts moto from the project's venv
//! (`.venv`, made by `make tools`) on a free loopback port, through `scripts/moto_server.py`
//! as the test command does, and a watcher stops it when the test process ends.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long moto may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why no emulator could be had.
#[derive(Debug, Clone)]
pub struct EmulatorError(String);

impl std::fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EmulatorError {}

/// Makes sure `AWS_ENDPOINT_URL` points at a moto server on loopback, starting one when it is
/// not set, and returns its URL. Call it before building any AWS client.
pub fn ensure_emulator() -> Result<String, EmulatorError> {
    static STARTED: OnceLock<Result<String, EmulatorError>> = OnceLock::new();
    STARTED
        .get_or_init(|| match std::env::var("AWS_ENDPOINT_URL") {
            Ok(url) if url.starts_with("http://127.0.0.1") => Ok(url),
            Ok(url) => Err(EmulatorError(format!(
                "AWS_ENDPOINT_URL is {url:?}: the tests run only against an emulator on loopback (127.0.0.1)"
            ))),
            Err(_) => start_moto(),
        })
        .clone()
}

fn workspace_root() -> PathBuf {
    // This crate lives at <root>/test-support.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("test-support is inside the workspace").to_path_buf()
}

fn free_port() -> Result<u16, EmulatorError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| EmulatorError(format!("no free loopback port: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| EmulatorError(format!("no free loopback port: {e}")))
}

fn start_moto() -> Result<String, EmulatorError> {
    let root = workspace_root();
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Err(EmulatorError(format!(
            "AWS_ENDPOINT_URL is not set and {} is missing: run `make tools` once (or the tests through `make test`)",
            python.display()
        )));
    }
    let port = free_port()?;
    let log_dir = root.join(".run");
    std::fs::create_dir_all(&log_dir).map_err(|e| EmulatorError(format!("{}: {e}", log_dir.display())))?;
    let log_path = log_dir.join(format!("test-moto-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).map_err(|e| EmulatorError(format!("{}: {e}", log_path.display())))?;
    // The watcher shell starts moto, then stops it once this test process is gone: a test
    // binary has no hook that runs at its exit.
    let script = r#"
        "$1" "$2" -H 127.0.0.1 -p "$3" &
        moto=$!
        while kill -0 "$4" 2>/dev/null && kill -0 "$moto" 2>/dev/null; do sleep 0.5; done
        kill "$moto" 2>/dev/null
        wait "$moto" 2>/dev/null
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("moto-watcher")
        .arg(&python)
        .arg(root.join("scripts/moto_server.py"))
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| EmulatorError(e.to_string()))?)
        .stderr(log)
        .spawn()
        .map_err(|e| EmulatorError(format!("could not start moto from {}: {e}", python.display())))?;
    let url = format!("http://127.0.0.1:{port}");
    wait_until_ready(port, &log_path)?;
    // SAFETY of set_var: done once, under the OnceLock, before the test builds any client.
    std::env::set_var("AWS_ENDPOINT_URL", &url);
    for (name, value) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", super::REGION),
        ("AWS_DEFAULT_REGION", super::REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(name, value);
    }
    for name in ["AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"] {
        std::env::remove_var(name);
    }
    Ok(url)
}

/// Polls moto's own API until it answers (a bounded wait).
fn wait_until_ready(port: u16, log_path: &Path) -> Result<(), EmulatorError> {
    use std::io::{Read, Write};
    let started = Instant::now();
    while started.elapsed() < START_TIMEOUT {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let mut answer = [0u8; 12];
            if stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut answer).is_ok()
                && answer.starts_with(b"HTTP/1.")
            {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(EmulatorError(format!(
        "moto did not answer on 127.0.0.1:{port} within {START_TIMEOUT:?}; its log: {}",
        log_path.display()
    )))
}
