//! Sends the process's standard output to a file for a while. The `send` handler prints one
//! CloudWatch metrics line (EMF) per invocation on stdout, as the function does; run inside
//! the benchmark's process, those lines would be mixed into the benchmark's own progress.
//! While a [`Redirect`] lives, file descriptor 1 is the file (the handler still pays for
//! writing them, as on Lambda); dropping it puts the terminal back.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::path::Path;

use anyhow::Context as _;

/// Standard output redirected to a file until dropped.
pub struct Redirect {
    saved: OwnedFd,
}

impl Redirect {
    /// Appends what is written on stdout to `path` from now on.
    pub fn to(path: &Path) -> anyhow::Result<Redirect> {
        let file = File::options().create(true).append(true).open(path).with_context(|| path.display().to_string())?;
        std::io::stdout().flush()?;
        // SAFETY: dup and dup2 only work on descriptors; 1 is stdout, `file` is open and
        // kept open across the calls, and the duplicate of 1 is owned from here on.
        let saved = unsafe {
            let saved = libc::dup(1);
            if saved < 0 {
                return Err(std::io::Error::last_os_error()).context("dup(1)");
            }
            let saved = OwnedFd::from_raw_fd(saved);
            if libc::dup2(file.as_raw_fd(), 1) < 0 {
                return Err(std::io::Error::last_os_error()).context("dup2(file, 1)");
            }
            saved
        };
        Ok(Redirect { saved })
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        // SAFETY: `saved` is the original stdout, open until this redirect is dropped.
        unsafe {
            libc::dup2(self.saved.as_raw_fd(), 1);
        }
    }
}
