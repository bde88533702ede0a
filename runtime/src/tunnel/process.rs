//! A child process in a process group of its own, stopped with SIGTERM, a grace
//! period, SIGKILL and a reap, both from async code and from `Drop`.
//!
//! The child leads its own group (`setpgid(0, 0)` at spawn), so signals reach
//! everything it started too. Whatever it left in the group is killed once the
//! child itself has been reaped.

use std::io;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// How long `Drop` lets the agent react to SIGTERM before SIGKILL. Dropping is
/// synchronous, so this is kept short; [`ProcessGroup::stop`] uses the full grace period.
pub(crate) const DROP_GRACE: Duration = Duration::from_millis(250);

/// How long `Drop` waits for a SIGKILLed process to disappear before handing it
/// to tokio's orphan reaper (it only happens for a process stuck in the kernel).
const DROP_KILL_WAIT: Duration = Duration::from_secs(2);

/// A spawned child that leads its own process group.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    child: Child,
    pid: u32,
    status: Option<ExitStatus>,
}

impl ProcessGroup {
    /// Spawns `cmd` as the leader of a new process group.
    pub(crate) fn spawn(cmd: &mut Command) -> io::Result<Self> {
        cmd.process_group(0).kill_on_drop(false);
        let child = cmd.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| io::Error::other("the child was reaped before its pid was read"))?;
        Ok(Self {
            child,
            pid,
            status: None,
        })
    }

    /// The child's process id, which is also its process group id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The child, to take its pipes.
    pub(crate) fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit on its own, reaps it and kills what it left
    /// in its group. Cancel-safe.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.child.wait().await?;
        Ok(self.reaped(status))
    }

    /// SIGTERM to the group, up to `grace` for the child to exit, then SIGKILL;
    /// reaps the child and kills what it left in its group.
    pub(crate) async fn stop(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if let Some(status) = self.child.try_wait()? {
            return Ok(self.reaped(status));
        }
        signal_group(self.pid, libc::SIGTERM)?;
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                tracing::warn!(
                    pid = self.pid,
                    ?grace,
                    "process did not exit after SIGTERM; sending SIGKILL"
                );
                signal_group(self.pid, libc::SIGKILL)?;
                self.child.wait().await?
            }
        };
        Ok(self.reaped(status))
    }

    /// Records the exit status and kills whatever is left in the group, so that
    /// nothing the child started outlives it (and its pipes close).
    fn reaped(&mut self, status: ExitStatus) -> ExitStatus {
        self.status = Some(status);
        // The group id stays reserved while any member lives, so this cannot hit
        // an unrelated process; ESRCH (an empty group) is the normal case.
        if let Err(err) = signal_group(self.pid, libc::SIGKILL) {
            tracing::warn!(pid = self.pid, %err, "could not kill the rest of the process group");
        }
        status
    }

    /// The synchronous stop used by `Drop`: SIGTERM, up to [`DROP_GRACE`],
    /// SIGKILL, reap.
    fn stop_blocking(&mut self) {
        let pid = self.pid;
        let result = (|| -> io::Result<Option<ExitStatus>> {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            signal_group(pid, libc::SIGTERM)?;
            if let Some(status) = wait_blocking(&mut self.child, pid, DROP_GRACE)? {
                return Ok(Some(status));
            }
            signal_group(pid, libc::SIGKILL)?;
            wait_blocking(&mut self.child, pid, DROP_KILL_WAIT)
        })();
        match result {
            Ok(Some(status)) => {
                self.reaped(status);
                tracing::debug!(pid, %status, "process stopped on drop");
            }
            Ok(None) => tracing::warn!(
                pid,
                "process did not exit after SIGKILL; leaving it to tokio's orphan reaper"
            ),
            Err(err) => tracing::warn!(pid, %err, "could not stop process on drop"),
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.stop_blocking();
        }
    }
}

/// Sends `signal` to the process group `pgid`; a group that no longer exists is fine.
fn signal_group(pgid: u32, signal: libc::c_int) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid).map_err(io::Error::other)?;
    // SAFETY: killpg has no memory-safety preconditions.
    if unsafe { libc::killpg(pgid, signal) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Blocks up to `timeout` for `child` to exit and reaps it.
fn wait_blocking(child: &mut Child, pid: u32, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    if let Some(status) = child.try_wait()? {
        return Ok(Some(status));
    }
    let deadline = Instant::now() + timeout;
    #[cfg(target_os = "linux")]
    if let Some(pidfd) = pidfd::open(pid) {
        pidfd::wait_readable(&pidfd, deadline)?;
        return child.try_wait();
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pid;
    // Without a pidfd (old kernels, other unixes) there is nothing to block on: poll.
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
    }
}

#[cfg(target_os = "linux")]
mod pidfd {
    //! Waiting for a process to exit with a timeout, without a busy loop.

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Instant;

    /// A pidfd for `pid`, or `None` where the kernel has none (before Linux 5.3).
    pub(super) fn open(pid: u32) -> Option<OwnedFd> {
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = libc::c_int::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Blocks until the process behind `pidfd` exits or `deadline` passes.
    pub(super) fn wait_readable(pidfd: &OwnedFd, deadline: Instant) -> io::Result<()> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
            let mut pfd = libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `pfd` is a valid pollfd and the count is 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, millis) };
            if rc >= 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn alive(pid: u32) -> bool {
        // SAFETY: kill with signal 0 only checks for existence.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).stdin(Stdio::null());
        cmd
    }

    #[tokio::test]
    async fn stop_escalates_to_sigkill_when_sigterm_is_ignored() {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = sh("trap '' TERM; echo ready; while :; do sleep 1; done");
        cmd.stdout(Stdio::piped());
        let mut group = ProcessGroup::spawn(&mut cmd).expect("spawn sh");
        let pid = group.pid();
        // Wait until the trap is in place.
        let stdout = group.child_mut().stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::io::BufReader::new(stdout)
            .read_line(&mut line)
            .await
            .expect("read");
        assert_eq!(line.trim(), "ready");
        let status = group.stop(Duration::from_millis(100)).await.expect("stop");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        assert!(!alive(pid), "pid {pid} still exists after stop");
    }

    #[tokio::test]
    async fn stop_uses_sigterm_first() {
        let mut group = ProcessGroup::spawn(&mut sh("exec sleep 1000")).expect("spawn sh");
        let pid = group.pid();
        let status = group.stop(Duration::from_secs(30)).await.expect("stop");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
        assert!(!alive(pid));
    }

    #[test]
    fn drop_kills_and_reaps_without_a_runtime() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let group = rt.block_on(async {
            ProcessGroup::spawn(&mut sh("trap '' TERM; while :; do sleep 1; done")).expect("spawn")
        });
        let pid = group.pid();
        assert!(alive(pid));
        drop(group);
        assert!(
            !alive(pid),
            "pid {pid} still exists (or is a zombie) after drop"
        );
    }
}
