//! A test process without `AWS_ENDPOINT_URL` starts its own moto from the project's venv:
//! the test runs this binary again with the variable removed, and the child checks that moto
//! answers on loopback and is stopped once the child has exited.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn moto_answers(url: &str) -> bool {
    let address = url.trim_start_matches("http://");
    let Ok(mut stream) = TcpStream::connect(address) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut answer = String::new();
    stream.write_all(format!("GET /moto-api/ HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.")
        && answer.lines().next().is_some_and(|l| l.contains(" 200"))
}

#[test]
fn without_aws_endpoint_url_a_test_process_starts_moto_and_it_stops_with_the_process() {
    let output = Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", "child_starts_its_own_moto", "--ignored", "--nocapture", "--test-threads", "1"])
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let url = stdout
        .lines()
        .find_map(|line| line.split_once("moto at ").map(|(_, url)| url.trim()))
        .expect("the child prints where its moto was")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    // The watcher stops moto within a second or so of the child's exit.
    let deadline = Instant::now() + Duration::from_secs(20);
    while moto_answers(&url) {
        assert!(Instant::now() < deadline, "moto at {url} still answers after its test process ended");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Run only by the test above, in a process of its own without `AWS_ENDPOINT_URL`.
#[test]
#[ignore = "run by without_aws_endpoint_url_a_test_process_starts_moto_and_it_stops_with_the_process"]
fn child_starts_its_own_moto() {
    assert!(std::env::var("AWS_ENDPOINT_URL").is_err(), "the parent removed AWS_ENDPOINT_URL");
    let url = test_support::ensure_emulator().expect("moto started from the venv");
    assert_eq!(std::env::var("AWS_ENDPOINT_URL").as_deref(), Ok(url.as_str()));
    assert!(moto_answers(&url), "moto answers at {url}");
    assert_eq!(test_support::ensure_emulator().expect("the same one"), url, "one moto per process");
    println!("moto at {url}");
}
