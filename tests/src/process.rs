//! A `connaudit` service started by a test: stderr goes to a log file, SIGTERM stops it, drop
//! kills it, and a failing test prints the log's tail.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{bail, Result};

use crate::brokers::connaudit_bin;

pub struct Connaudit {
    child: Child,
    log: PathBuf,
}

impl Connaudit {
    pub fn start(args: &[&str], log: &Path) -> Result<Connaudit> {
        Self::start_with(args, &[], log)
    }

    /// Like [`Connaudit::start`], with these environment variables set.
    pub fn start_with(args: &[&str], env: &[(&str, &str)], log: &Path) -> Result<Connaudit> {
        // Appending: a service restarted by a test keeps one log.
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
        let mut command = Command::new(connaudit_bin()?);
        command.args(args).envs(env.iter().copied()).stdout(Stdio::null()).stderr(out);
        let child = command.spawn()?;
        Ok(Connaudit { child, log: log.to_path_buf() })
    }

    /// Sends `kill -SIGNAL` and waits for the exit.
    pub fn signal(&mut self, signal: &str) -> Result<ExitStatus> {
        Command::new("kill").args([signal, &self.child.id().to_string()]).status()?;
        Ok(self.child.wait()?)
    }

    /// Sends `kill -SIGNAL` without waiting (SIGSTOP, SIGCONT).
    pub fn signal_only(&mut self, signal: &str) -> Result<()> {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill {signal} failed: {status}");
        }
        Ok(())
    }

    /// SIGTERM, which must end it cleanly.
    pub fn stop(mut self) -> Result<()> {
        let status = self.signal("-TERM")?;
        if !status.success() {
            bail!("exited with {status} after SIGTERM; see {}", self.log.display());
        }
        Ok(())
    }

    /// Waits for it to end by itself, at most `timeout`.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Result<ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!("still running after {timeout:?}; see {}", self.log.display());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its resident memory now (VmRSS), in KiB; None once it ended.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// True while it runs.
    pub fn running(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }
}

impl Drop for Connaudit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of {} ---", self.log.display());
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
    }
}
