//! The server side as a separate process: this binary run again with
//! `serve ...`, optionally under `taskset -c 0`; plus CPU pinning of the
//! driver and reading a process's resident memory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::BoxError;

/// Where a server listens.
#[derive(Clone, Debug)]
pub enum Target {
    /// `127.0.0.1:PORT`.
    Tcp(String),
    /// A Unix socket path.
    Unix(PathBuf),
    /// `127.0.0.1:PORT` with TLS; the CA certificate to trust is `ca.pem`
    /// in this directory.
    Tls(String, PathBuf),
}

/// A server child process; stopped (stdin closed, then killed) on drop.
pub struct Server {
    child: std::process::Child,
    /// Where it listens.
    pub target: Target,
}

impl Server {
    /// The child's process id (the same under `taskset`, which execs).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `taskset` can be run here.
pub fn have_taskset() -> bool {
    Command::new("taskset")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Starts `netsock-bench serve IMPL TRANSPORT RT MODE [PATH]` and waits for
/// its `ready ...` line.
pub fn spawn(
    imp: &str,
    unix: bool,
    rt: &str,
    mode: &str,
    pinned: bool,
    dir: &Path,
) -> Result<Server, BoxError> {
    let transport = if unix { "unix" } else { "tcp" };
    spawn_on(imp, transport, rt, mode, pinned, dir)
}

/// [`spawn`] on `tcp`, `unix` or `tls` (netsock only: its certificate and
/// key are `cert.pem` and `key.pem` in `dir`, made by the driver).
pub fn spawn_on(
    imp: &str,
    transport: &str,
    rt: &str,
    mode: &str,
    pinned: bool,
    dir: &Path,
) -> Result<Server, BoxError> {
    let unix = transport == "unix";
    let exe = std::env::current_exe()?;
    let mut cmd = if pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.arg("serve").arg(imp).arg(transport).arg(rt).arg(mode);
    if transport == "tls" {
        cmd.arg(dir);
    }
    if unix {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{imp}-{n}.sock"));
        let _ = std::fs::remove_file(&path);
        cmd.arg(path);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    let target = match (words.next(), words.next(), words.next()) {
        (Some("ready"), Some("tcp"), Some(addr)) => Target::Tcp(addr.to_owned()),
        (Some("ready"), Some("unix"), Some(path)) => Target::Unix(PathBuf::from(path)),
        (Some("ready"), Some("tls"), Some(addr)) => Target::Tls(addr.to_owned(), dir.to_owned()),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the {imp} server did not start (said {line:?})").into());
        }
    };
    Ok(Server { child, target })
}

/// Resident memory of process `pid` in bytes, from `/proc/PID/statm`.
pub fn rss_bytes(pid: u32) -> Result<u64, BoxError> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("short statm")?
        .parse()?;
    Ok(pages * page_size())
}

fn page_size() -> u64 {
    Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// This process's CPU affinity list (`taskset -c -p`), e.g. `0,1`.
pub fn affinity() -> Option<String> {
    let out = Command::new("taskset")
        .args(["-c", "-p", &std::process::id().to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.rsplit(':').next()?.trim().to_owned())
}

/// Sets the CPU affinity of every thread of this process.
pub fn pin_self(cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-c", "-p", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
