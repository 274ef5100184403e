//! A function process run as Lambda runs it: its own Runtime API, the Lambda environment
//! variables, and nothing else from the caller's environment unless asked for.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::{oneshot, watch};

use crate::runtime_api::{Invocation, InvokeError, RuntimeApi};

/// What to run and with which configuration.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The executable (a `bootstrap`, or `target/<profile>/<bin>`).
    pub program: PathBuf,
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub memory_mb: u32,
    /// The function's own environment (its configuration).
    pub env: Vec<(String, String)>,
    /// Where stdout and stderr go (appended); `None`: discarded.
    pub log: Option<PathBuf>,
}

impl FunctionSpec {
    pub fn new(program: impl Into<PathBuf>, name: &str) -> Self {
        FunctionSpec { program: program.into(), name: name.to_owned(), memory_mb: 128, env: Vec::new(), log: None }
    }

    /// Adds (or replaces) one variable.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.retain(|(k, _)| k != name);
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Copies these variables from this process's environment, when set (the AWS endpoint
    /// and credentials of the emulators, for instance).
    pub fn inherit(mut self, names: &[&str]) -> Self {
        for name in names {
            if let Ok(value) = std::env::var(name) {
                self = self.env(name, value);
            }
        }
        self
    }

    /// The emulator settings every function needs: `AWS_ENDPOINT_URL`, credentials, region,
    /// proxies bypassed for loopback.
    pub fn inherit_aws(self) -> Self {
        self.inherit(&[
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AWS_EC2_METADATA_DISABLED",
            "NO_PROXY",
            "no_proxy",
        ])
    }

    pub fn log_to(mut self, path: impl AsRef<Path>) -> Self {
        self.log = Some(path.as_ref().to_owned());
        self
    }
}

/// One running function process with its Runtime API.
pub struct Instance {
    api: Arc<RuntimeApi>,
    pid: u32,
    spawned_at: Instant,
    kill: Option<oneshot::Sender<()>>,
    exited: watch::Receiver<Option<ExitStatus>>,
}

impl Instance {
    /// A fresh Runtime API, then the process (`exec` happens here: `spawned_at` is taken
    /// just before it).
    pub async fn start(spec: &FunctionSpec) -> std::io::Result<Instance> {
        let api = Arc::new(RuntimeApi::start(&spec.name).await?);
        Self::start_with(spec, api).await
    }

    /// Starts the process against an existing Runtime API (on which invocations may
    /// already be queued, as for a cold start).
    pub async fn start_with(spec: &FunctionSpec, api: Arc<RuntimeApi>) -> std::io::Result<Instance> {
        let mut command = Command::new(&spec.program);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("LAMBDA_TASK_ROOT", "/var/task")
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in &spec.env {
            command.env(name, value);
        }
        match &spec.log {
            Some(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let spawned_at = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id().unwrap_or_default();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let (exit_tx, exit_rx) = watch::channel(None);
        let waiter_api = Arc::clone(&api);
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let reason = match &status {
                Ok(status) => format!("the function process exited ({status})"),
                Err(err) => format!("the function process could not be waited for: {err}"),
            };
            waiter_api.abandon_all(&reason);
            let _ = exit_tx.send(status.ok());
        });
        Ok(Instance { api, pid, spawned_at, kill: Some(kill_tx), exited: exit_rx })
    }

    pub fn api(&self) -> &Arc<RuntimeApi> {
        &self.api
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Just before `exec`.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// Invokes the function and waits at most `timeout` (also its deadline).
    pub async fn invoke(&self, event: &serde_json::Value, timeout: Duration) -> Result<Invocation, InvokeError> {
        self.api.invoke(event, timeout).await
    }

    /// The process's peak resident set size (`VmHWM`), in KiB, while it runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmHWM:")
    }

    /// The process's current resident set size (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmRSS:")
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> Option<std::time::Duration> {
        cpu_time(self.pid)
    }

    /// True once the process has exited.
    pub fn has_exited(&self) -> bool {
        self.exited.borrow().is_some()
    }

    /// SIGKILL, as Lambda does at a timeout or when it reclaims the environment; waits until
    /// the process is gone. Its delivered invocations fail as abandoned.
    pub async fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), exited.wait_for(|status| status.is_some())).await;
    }

    /// Waits at most `timeout` for the process to exit on its own.
    pub async fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut exited = self.exited.clone();
        let status = match tokio::time::timeout(timeout, exited.wait_for(|status| status.is_some())).await {
            Ok(Ok(status)) => *status,
            _ => None,
        };
        status
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// CPU time (user + system) process `pid` has used, from `/proc/<pid>/stat` (in clock ticks
/// of 1/100 s, Linux's `USER_HZ` on every common architecture).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
