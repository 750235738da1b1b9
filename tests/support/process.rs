//! Processes for tests: free loopback ports, temp dirs, spawning with logs to files, and a
//! reaper that stops every registered PID (and removes the temp dir) once the test binary
//! exits, however it exits.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1, for servers that cannot take port 0 themselves.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh temp dir for this test binary, removed by the reaper.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Stops registered processes when this process ends. A small shell loop polls our PID, so it
/// also works when the test binary panics, calls `exit`, or is killed.
pub struct Reaper {
    pid_file: PathBuf,
}

impl Reaper {
    /// Starts the reaper for `dir` (removed at the end). It outlives this process on purpose,
    /// so it is never waited for.
    #[allow(clippy::zombie_processes)]
    pub fn start(dir: &Path) -> Self {
        let pid_file = dir.join("pids");
        File::create(&pid_file).unwrap();
        let script = format!(
            r#"while kill -0 {parent} 2>/dev/null; do sleep 0.5; done
pids=$(cat '{pids}' 2>/dev/null)
[ -n "$pids" ] && kill $pids 2>/dev/null
for i in $(seq 1 20); do alive=""; for p in $pids; do kill -0 $p 2>/dev/null && alive=1; done; [ -z "$alive" ] && break; sleep 0.25; done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
rm -rf '{dir}'"#,
            parent = std::process::id(),
            pids = pid_file.display(),
            dir = dir.display(),
        );
        // Its own session, so that a Ctrl-C or a process-group kill aimed at the test run does
        // not take the reaper down before it has done its job.
        Command::new("setsid")
            .args(["bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the process reaper (setsid and bash, from util-linux and bash)");
        Self { pid_file }
    }

    pub fn register(&self, pid: u32) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.pid_file)
            .unwrap();
        writeln!(f, "{pid}").unwrap();
    }
}

/// A spawned server process with its log file.
pub struct Server {
    pub name: &'static str,
    pub child: Child,
    pub log: PathBuf,
}

impl Server {
    /// Spawns `program args...` with stdout and stderr to `dir/<name>.log`, registered with the
    /// reaper.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        dir: &Path,
        reaper: &Reaper,
    ) -> Self {
        Self::spawn_with_env(name, program, args, &[], dir, reaper)
    }

    /// [`Server::spawn`] with extra environment variables.
    pub fn spawn_with_env(
        name: &'static str,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        dir: &Path,
        reaper: &Reaper,
    ) -> Self {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({}): {e}", program.display()));
        reaper.register(child.id());
        Self { name, child, log }
    }

    /// The last lines of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        let _ = File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Panics with the log tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log_tail());
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `ready` until it returns true, checking that `server` is still alive.
pub fn wait_until(server: &mut Server, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        server.assert_running();
        if ready() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{} not ready after {timeout:?}:\n{}",
                server.name,
                server.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP GET on loopback; true on a 200 answer.
pub fn http_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS:`, `VmHWM:`); 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}
