//! Redirecting stdout to stderr while library code that prints metrics runs.

use std::io::Write as _;

/// While alive, file descriptor 1 points at stderr; dropped, stdout is back.
pub struct StdoutToStderr {
    #[cfg(unix)]
    saved: libc::c_int,
}

impl StdoutToStderr {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let _ = std::io::stdout().flush();
        #[cfg(unix)]
        {
            // SAFETY: dup/dup2 on the process's standard descriptors, which stay open; a
            // failure leaves stdout as it was (saved = -1 is never restored).
            let saved = unsafe { libc::dup(1) };
            if saved >= 0 {
                unsafe { libc::dup2(2, 1) };
            }
            StdoutToStderr { saved }
        }
        #[cfg(not(unix))]
        StdoutToStderr {}
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        #[cfg(unix)]
        if self.saved >= 0 {
            // SAFETY: restores the descriptor saved in `new` and closes the copy.
            unsafe {
                libc::dup2(self.saved, 1);
                libc::close(self.saved);
            }
        }
    }
}
