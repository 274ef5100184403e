//! A loopback TCP proxy in front of an emulator: counts the AWS operations that go through
//! it (the `X-Amz-Target` header of each request, e.g. `DynamoDB_20120810.UpdateItem`), and
//! makes outages — connections refused (accepted then reset) or black-holed (accepted,
//! never answered) — then lets traffic through again. moto keeps no state across a restart,
//! so an outage is made here, never by stopping moto.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// How the proxy treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Pass,
    /// Accept, then reset at once: the client sees its connection refused or reset.
    Refuse,
    /// Accept, read and discard, never answer: the client waits until its own timeout.
    Blackhole,
}

impl Mode {
    fn to_u8(self) -> u8 {
        match self {
            Mode::Pass => 0,
            Mode::Refuse => 1,
            Mode::Blackhole => 2,
        }
    }

    fn from_u8(value: u8) -> Mode {
        match value {
            1 => Mode::Refuse,
            2 => Mode::Blackhole,
            _ => Mode::Pass,
        }
    }
}

#[derive(Default)]
struct Shared {
    mode: AtomicU8,
    counts: Mutex<BTreeMap<String, u64>>,
    connections: Mutex<Vec<AbortHandle>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running proxy; dropping it stops it and breaks its connections.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.server.abort();
        self.kill_connections();
    }
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let accept_shared = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = client.set_nodelay(true);
                let shared = Arc::clone(&accept_shared);
                match Mode::from_u8(shared.mode.load(Ordering::SeqCst)) {
                    Mode::Refuse => {
                        let _ = client.set_zero_linger();
                        drop(client);
                    }
                    Mode::Blackhole => {
                        let task = tokio::spawn(async move {
                            let mut client = client;
                            let mut sink = [0u8; 16 * 1024];
                            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
                        });
                        register(&shared, task.abort_handle());
                    }
                    Mode::Pass => {
                        let task_shared = Arc::clone(&shared);
                        let task = tokio::spawn(async move {
                            if let Ok(server) = TcpStream::connect(upstream).await {
                                let _ = server.set_nodelay(true);
                                forward(client, server, &task_shared).await;
                            }
                        });
                        register(&shared, task.abort_handle());
                    }
                }
            }
        });
        Ok(TcpProxy { addr, shared, server })
    }

    /// Parses `http://host:port` (the emulator's URL) into an address.
    pub async fn in_front_of(url: &str) -> std::io::Result<TcpProxy> {
        let host_port = url.trim_start_matches("http://").trim_end_matches('/');
        let upstream = tokio::net::lookup_host(host_port)
            .await?
            .next()
            .ok_or_else(|| std::io::Error::other(format!("no address for {url}")))?;
        Self::start(upstream).await
    }

    /// `http://127.0.0.1:PORT`: the endpoint URL to give the clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Changes how new connections are treated. A change also breaks every live connection
    /// (with a reset): leaving `Pass`, requests in progress fail too; coming back to it,
    /// black-holed clients see an error at once and retry.
    pub fn set_mode(&self, mode: Mode) {
        let old = self.shared.mode.swap(mode.to_u8(), Ordering::SeqCst);
        if old != mode.to_u8() {
            self.kill_connections();
        }
    }

    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.shared.mode.load(Ordering::SeqCst))
    }

    /// Breaks every live connection.
    pub fn kill_connections(&self) {
        for task in lock(&self.shared.connections).drain(..) {
            task.abort();
        }
    }

    /// Requests seen so far, by `X-Amz-Target` (`DynamoDB_20120810.PutItem`, …).
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.counts).clone()
    }

    /// The count of one operation.
    pub fn count(&self, target: &str) -> u64 {
        lock(&self.shared.counts).get(target).copied().unwrap_or(0)
    }

    /// Forgets the counts.
    pub fn reset_counts(&self) {
        lock(&self.shared.counts).clear();
    }
}

fn register(shared: &Shared, task: AbortHandle) {
    let mut connections = lock(&shared.connections);
    connections.retain(|t| !t.is_finished());
    connections.push(task);
}

/// Copies both ways until either side closes; counts the request targets going upstream.
/// Aborting the task drops both sockets; the client's gets a zero linger first, so that it
/// sees a reset.
async fn forward(client: TcpStream, server: TcpStream, shared: &Shared) {
    let _ = client.set_zero_linger();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut scanner = Scanner::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let targets = scanner.feed(&buf[..n]);
            if !targets.is_empty() {
                let mut counts = lock(&shared.counts);
                for target in targets {
                    *counts.entry(target).or_default() += 1;
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

const NEEDLE: &[u8] = b"x-amz-target:";

/// Finds `X-Amz-Target: value\r\n` in a byte stream cut anywhere.
#[derive(Default)]
struct Scanner {
    pending: Vec<u8>,
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

impl Scanner {
    fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut found = Vec::new();
        let mut pos = 0;
        loop {
            match find_ci(&self.pending[pos..], NEEDLE) {
                Some(i) => {
                    let start = pos + i + NEEDLE.len();
                    match self.pending[start..].windows(2).position(|w| w == b"\r\n") {
                        Some(j) => {
                            let value = String::from_utf8_lossy(&self.pending[start..start + j]).trim().to_owned();
                            found.push(value);
                            pos = start + j;
                        }
                        None => {
                            pos += i;
                            break;
                        }
                    }
                }
                None => {
                    pos = self.pending.len().saturating_sub(NEEDLE.len() - 1).max(pos);
                    break;
                }
            }
        }
        self.pending.drain(..pos);
        if self.pending.len() > 4096 {
            // A header value never gets this long: drop what cannot be one.
            let cut = self.pending.len() - NEEDLE.len();
            self.pending.drain(..cut);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_found_across_chunk_boundaries() {
        let stream = b"POST / HTTP/1.1\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\ncontent-length: 2\r\n\r\n{}POST / HTTP/1.1\r\nx-amz-target: AmazonSQS.SendMessage\r\n\r\n";
        for cut in 1..stream.len() {
            let mut scanner = Scanner::default();
            let mut found = scanner.feed(&stream[..cut]);
            found.extend(scanner.feed(&stream[cut..]));
            assert_eq!(found, vec!["DynamoDB_20120810.PutItem", "AmazonSQS.SendMessage"], "cut at {cut}");
        }
        let mut scanner = Scanner::default();
        let mut found = Vec::new();
        for byte in stream.iter() {
            found.extend(scanner.feed(&[*byte]));
        }
        assert_eq!(found.len(), 2);
    }
}
