//! Real brokers as child processes on free loopback ports, killed when dropped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A broker process; killed and reaped on drop, restartable on the same port and files.
pub struct Server {
    pub port: u16,
    name: &'static str,
    command: Vec<std::ffi::OsString>,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the broker said.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.name))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of {} log ---", self.name);
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
    }
}

impl Server {
    /// Mosquitto (Debian's package), anonymous, in-memory.
    pub fn mosquitto() -> Result<Server> {
        Server::mosquitto_with(|_| Ok(String::new()))
    }

    /// Mosquitto with extra configuration lines, written by `extra` given the scratch
    /// directory (for certificates, a persistence location or a second listener).
    pub fn mosquitto_with(extra: impl FnOnce(&std::path::Path) -> Result<String>) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        // Mosquitto drops QoS 1 messages beyond 1000 queued for an offline session by default;
        // a real deployment must raise that limit too (EMQX: max_mqueue_len).
        let mut settings = "allow_anonymous true\nmax_queued_messages 0\n".to_string();
        // Started as root, mosquitto switches to its own user, which cannot read the scratch dir.
        if Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
            settings.push_str("user root\n");
        }
        std::fs::write(&conf, format!("{settings}{}listener {port} 127.0.0.1\n", extra(dir.path())?))?;
        let program = tool("mosquitto", "MOSQUITTO_BIN", &["/usr/sbin/mosquitto"]);
        Server::spawn("mosquitto", vec![program.into(), "-c".into(), conf.into()], port, dir)
    }

    /// tansu with memory storage.
    pub fn tansu() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = vec![tool("tansu", "TANSU_BIN", &[]).into()];
        for arg in
            ["broker", "--storage-engine", "memory://tansu/", "--listener-url", &url, "--advertised-listener-url", &url]
        {
            command.push(arg.into());
        }
        Server::spawn("tansu", command, port, dir)
    }

    /// moto's S3-compatible server (PyPI, in the cache's virtualenv), in memory.
    pub fn moto_s3() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let program = tool("moto_server", "MOTO_SERVER_BIN", &[&format!("{}/bin/moto_server", crate::duck::venv())]);
        let command = vec![program.into(), "-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string().into()];
        Server::spawn("moto_server", command, port, dir)
    }

    /// moto's STS (and every other service) over HTTPS, with a certificate for 127.0.0.1 signed
    /// by a CA made for it: the CA's PEM file is `dir()/ca.pem` (give it to clients as
    /// `SSL_CERT_FILE`). object_store reaches STS only over TLS, and sends a web identity
    /// token's parameters in the query, which moto reads only from a body: `moto_sts.py` runs
    /// moto's server with that one adapter.
    pub fn moto_sts() -> Result<Server> {
        let dir = tempfile::tempdir()?;
        crate::tls::certificate_for_loopback(dir.path())?;
        let script = dir.path().join("moto_sts.py");
        std::fs::write(&script, include_str!("moto_sts.py"))?;
        let port = free_port();
        let command: Vec<std::ffi::OsString> = vec![
            crate::duck::python().into(),
            script.into(),
            port.to_string().into(),
            dir.path().join("server.pem").into(),
            dir.path().join("server.key").into(),
        ];
        Server::spawn("moto_sts", command, port, dir)
    }

    fn spawn(
        name: &'static str,
        command: Vec<std::ffi::OsString>,
        port: u16,
        dir: tempfile::TempDir,
    ) -> Result<Server> {
        let child = start(name, &command, dir.path())?;
        let mut server = Server { port, name, command, child, dir };
        server.wait_listening()?;
        Ok(server)
    }

    /// Stops the broker with SIGTERM (so it saves what it persists) and starts it again.
    pub fn restart(&mut self) -> Result<()> {
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        self.child.wait()?;
        self.child = start(self.name, &self.command, self.dir.path())?;
        self.wait_listening()
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn wait_listening(&mut self) -> Result<()> {
        let what = self.name;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{what} exited with {status} before listening on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{what} did not listen on 127.0.0.1:{} within 20 s", self.port)
    }
}

fn start(name: &str, command: &[std::ffi::OsString], dir: &std::path::Path) -> Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{name}.log")))?;
    Command::new(&command[0])
        .args(&command[1..])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {name}; scripts/install-deps.sh installs it"))
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

/// What an end-to-end test of the binary runs against: Mosquitto and tansu, with the events
/// topic (`partitions`), its dead-letter topic and its alerts topic.
pub struct Stack {
    pub mqtt: Server,
    pub kafka: Server,
    pub topic: String,
    pub dlq: String,
    pub alerts: String,
}

impl Stack {
    /// Starts both brokers and creates the topics; for a test without a runtime of its own.
    pub fn start(partitions: i32) -> Result<Stack> {
        let (mqtt, kafka) = (Server::mosquitto()?, Server::tansu()?);
        let topic = crate::unique("events");
        let (dlq, alerts) = (format!("{topic}.dlq"), format!("{topic}.alerts"));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(crate::create_topics(&kafka.bootstrap(), &[&topic], partitions))?;
        runtime.block_on(crate::create_topics(&kafka.bootstrap(), &[&dlq, &alerts], 1))?;
        Ok(Stack { mqtt, kafka, topic, dlq, alerts })
    }
}
