//! Finds a workspace binary from a test of another package.
//!
//! `env!("CARGO_BIN_EXE_<name>")` exists only for the binaries of the test's own package; the
//! function binaries live in `functions/*`. A test executable sits in
//! `<target>/<profile>/deps/`, and cargo puts binaries in `<target>/<profile>/`, so the
//! binary is looked for there. It is used as it is when it is at least as new as the
//! library it was linked with (`lib<crate>.rlib` of the same profile: a change of the
//! library rebuilds that first); otherwise — missing or stale, as after
//! `cargo test -p missive` alone — `cargo build -p <package> --bin <name>` is run, once per
//! test process, with the same profile and target directory. `MISSIVE_BIN_DIR` overrides
//! all of it (a directory holding ready binaries, e.g. release builds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Where cargo puts the binaries of the profile this test was built with.
pub fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    Some(deps.parent()?.to_owned())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The path of binary `bin` of workspace package `package`, built if missing or older than
/// `lib<library>.rlib`. `workspace` is the workspace root (a test passes
/// `env!("CARGO_MANIFEST_DIR")` of the root package).
pub fn workspace_bin(workspace: &str, package: &str, bin: &str, library: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    if let Ok(dir) = std::env::var("MISSIVE_BIN_DIR") {
        let path = Path::new(&dir).join(bin);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("MISSIVE_BIN_DIR has no {bin}: {}", path.display()))
        };
    }
    let mut built = BUILT.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(bin) {
        return Ok(path.clone());
    }
    let dir = profile_dir().ok_or("the test executable is not in <target>/<profile>/deps")?;
    let path = dir.join(bin);
    let rlib = dir.join(format!("lib{library}.rlib"));
    let fresh = match (modified(&path), modified(&rlib)) {
        (Some(binary), Some(lib)) => binary >= lib,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !fresh {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => return Err(format!("no profile name in {}", dir.display())),
        };
        let target_dir = dir.parent().ok_or("no target directory")?;
        let cargo = std::env::var("CARGO").ok().or(option_env!("CARGO").map(str::to_owned)).unwrap_or("cargo".into());
        eprintln!("lambda-harness: building {bin} ({package}, profile {profile}): missing or older than lib{library}");
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", package, "--bin", bin, "--profile", &profile])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(workspace)
            .status()
            .map_err(|e| format!("cargo build -p {package}: {e}"))?;
        if !status.success() && !path.is_file() {
            return Err(format!("cargo build -p {package} --bin {bin} failed ({status})"));
        }
    }
    if !path.is_file() {
        return Err(format!("{} does not exist", path.display()));
    }
    built.insert(bin.to_owned(), path.clone());
    Ok(path)
}
