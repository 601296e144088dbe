//! Real brokers as child processes on free loopback ports, killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A broker process; killed and reaped on drop.
pub struct Server {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Mosquitto (Debian's package), anonymous, in-memory.
    pub fn mosquitto() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        // Mosquitto drops QoS 1 messages beyond 1000 queued for an offline session by default;
        // a real deployment must raise that limit too (EMQX: max_mqueue_len).
        let settings = "allow_anonymous true\npersistence false\nmax_queued_messages 0\n";
        std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{settings}"))?;
        let child = Command::new(tool("mosquitto", "MOSQUITTO_BIN", &["/usr/sbin/mosquitto"]))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start mosquitto; scripts/install-deps.sh installs it")?;
        Server { port, child, dir }.wait_listening("mosquitto")
    }

    /// tansu with memory storage.
    pub fn tansu() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.path().join("tansu.log"))?;
        let child = Command::new(tool("tansu", "TANSU_BIN", &[]))
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start tansu; scripts/install-deps.sh installs it")?;
        Server { port, child, dir }.wait_listening("tansu")
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn wait_listening(mut self, what: &str) -> Result<Server> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(self);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{what} exited with {status} before listening on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{what} did not listen on 127.0.0.1:{} within 20 s", self.port)
    }
}

/// `$ENV`, else the tool cache `scripts/install-deps.sh` fills, else the given paths, else `PATH`.
fn tool(name: &str, env: &str, extra: &[&str]) -> PathBuf {
    if let Ok(path) = std::env::var(env) {
        return path.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let cache = std::env::var("CONNAUDIT_CACHE").unwrap_or(format!("{home}/.cache/connaudit"));
    let candidates = [format!("{cache}/tools/bin/{name}")].into_iter().chain(extra.iter().map(|s| s.to_string()));
    candidates.map(PathBuf::from).find(|p| p.exists()).unwrap_or_else(|| name.into())
}

/// The built `connaudit` binary: `$CONNAUDIT_BIN`, else `connaudit` beside the test's own
/// target directory (`scripts/test.sh` builds it first).
pub fn connaudit_bin() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("CONNAUDIT_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).context("test binary has no target dir")?;
    let bin = profile_dir.join("connaudit");
    if !bin.exists() {
        bail!("{} does not exist: run `cargo build --bin connaudit` first (scripts/test.sh does)", bin.display());
    }
    Ok(bin)
}
