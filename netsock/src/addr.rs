//! Addresses: where a server listens and where a socket connects.
//!
//! One [`Addr`] type covers every transport. It is parsed from what a user
//! would write, the way net-socket.io's `Server(3000)` / `Server('/tmp/app')`
//! read:
//!
//! | input                         | meaning                                   |
//! |-------------------------------|-------------------------------------------|
//! | `3000` (a `u16`), `"3000"`     | TCP on **127.0.0.1** port 3000 (loopback only) |
//! | `"0.0.0.0:3000"`, `"host:3000"` | TCP on that host and port               |
//! | `"[::1]:3000"`                 | TCP on an IPv6 address                    |
//! | `"/tmp/app.sock"`, `"./app.sock"` | Unix domain socket at that path (any string with a `/`) |
//! | `"tcp://host:3000"`, `"unix://app.sock"` | explicit transport             |
//! | `"tls://host:3000"`            | TCP with TLS (the `tls` feature; see `ClientTls`) |
//! | `SocketAddr`, `PathBuf`, `&Path` | TCP, Unix                               |
//! | `"memory://name"`, `"memory://"` | [in memory](crate::memory), in this process; no name: a fresh one |
//!
//! A bare port means the loopback interface, so that a server is not exposed
//! to the network by accident; write `"0.0.0.0:3000"` (or `"[::]:3000"`) to
//! listen on every interface. Port `0` asks the OS for a free port; the
//! server's [`local_addr`](crate::Server::local_addr) reports the one chosen.
//!
//! ```
//! use netsock::Addr;
//!
//! assert_eq!("3000".parse::<Addr>()?, Addr::tcp("127.0.0.1", 3000));
//! assert_eq!("[::1]:80".parse::<Addr>()?, Addr::tcp("::1", 80));
//! assert_eq!("./app.sock".parse::<Addr>()?, Addr::unix("./app.sock"));
//! assert!("localhost".parse::<Addr>().is_err()); // no port, no path
//! # Ok::<(), netsock::Error>(())
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The host a bare port number binds and connects to.
///
/// ```
/// use netsock::{addr::DEFAULT_HOST, Addr};
/// assert_eq!(Addr::from(3000), Addr::tcp(DEFAULT_HOST, 3000));
/// ```
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// A TCP host and port, a Unix domain socket path, or the name of an
/// in-memory listener.
///
/// See the [module documentation](self) for every accepted spelling.
///
/// ```
/// use netsock::Addr;
/// let addr: Addr = "localhost:3000".parse()?;
/// match &addr {
///     Addr::Tcp { host, port } => assert_eq!((host.as_str(), *port), ("localhost", 3000)),
///     Addr::Unix(path) => unreachable!("not a path: {}", path.display()),
///     _ => unreachable!(),
/// }
/// assert_eq!(addr.to_string(), "tcp://localhost:3000");
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// TCP: a host name or IP address (IPv6 without brackets) and a port.
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port; `0` binds an ephemeral port.
        port: u16,
    },
    /// A Unix domain socket at this path.
    Unix(PathBuf),
    /// TCP with TLS (`tls://host:port`): a client checks the server's
    /// certificate against `host` (unless
    /// `ClientTls::server_name` says
    /// otherwise). Needs the `tls` feature.
    Tls {
        /// Host name or IP address.
        host: String,
        /// Port; `0` binds an ephemeral port.
        port: u16,
    },
    /// An [in-memory](crate::memory) listener's name, in this process; an
    /// empty one binds a fresh name.
    Memory(String),
}

impl Addr {
    /// A TCP address.
    ///
    /// ```
    /// let addr = netsock::Addr::tcp("localhost", 3000);
    /// assert_eq!(addr.to_string(), "tcp://localhost:3000");
    /// ```
    pub fn tcp(host: impl Into<String>, port: u16) -> Self {
        Addr::Tcp {
            host: host.into(),
            port,
        }
    }

    /// A TLS address: TCP to `host:port`, with TLS on top.
    ///
    /// ```
    /// let addr = netsock::Addr::tls("svc.internal", 7000);
    /// assert_eq!(addr.to_string(), "tls://svc.internal:7000");
    /// assert_eq!("tls://svc.internal:7000".parse::<netsock::Addr>()?, addr);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn tls(host: impl Into<String>, port: u16) -> Self {
        Addr::Tls {
            host: host.into(),
            port,
        }
    }

    /// A Unix domain socket address.
    ///
    /// ```
    /// let addr = netsock::Addr::unix("/tmp/my-app");
    /// assert_eq!(addr.to_string(), "unix:///tmp/my-app");
    /// ```
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Addr::Unix(path.into())
    }

    /// An in-memory address (see [`memory`](crate::memory)); `""` binds a
    /// fresh name, the way port 0 binds a free port.
    ///
    /// ```
    /// let addr = netsock::Addr::memory("orders");
    /// assert_eq!(addr.to_string(), "memory://orders");
    /// assert_eq!("memory://orders".parse::<netsock::Addr>()?, addr);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn memory(name: impl Into<String>) -> Self {
        Addr::Memory(name.into())
    }

    /// The path, when this is a Unix socket address.
    ///
    /// ```
    /// assert!(netsock::Addr::tcp("::1", 1).as_path().is_none());
    /// ```
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            Addr::Unix(p) => Some(p),
            _ => None,
        }
    }

    /// The port, when this is a TCP (or TLS) address.
    ///
    /// ```
    /// assert_eq!(netsock::Addr::from(4000).port(), Some(4000));
    /// assert_eq!(netsock::Addr::tls("h", 4001).port(), Some(4001));
    /// ```
    pub fn port(&self) -> Option<u16> {
        match self {
            Addr::Tcp { port, .. } | Addr::Tls { port, .. } => Some(*port),
            _ => None,
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            Addr::Tls { host, port } if host.contains(':') => write!(f, "tls://[{host}]:{port}"),
            Addr::Tls { host, port } => write!(f, "tls://{host}:{port}"),
            Addr::Unix(path) => write!(f, "unix://{}", path.display()),
            Addr::Memory(name) => write!(f, "memory://{name}"),
        }
    }
}

/// An address that is neither a port, `host:port`, a path nor a
/// `tcp://`, `tls://`, `unix://` or `memory://` URL. It converts into
/// [`Error::InvalidAddr`](crate::Error::InvalidAddr), with the same fields.
///
/// ```
/// let err = "localhost".parse::<netsock::Addr>().unwrap_err();
/// assert_eq!(err.input, "localhost");
/// assert!(matches!(netsock::Error::from(err), netsock::Error::InvalidAddr { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {input:?}: {reason}")]
#[non_exhaustive]
pub struct InvalidAddr {
    /// What was given.
    pub input: String,
    /// What is wrong with it, and what to write instead.
    pub reason: &'static str,
}

fn invalid(input: &str, reason: &'static str) -> InvalidAddr {
    InvalidAddr {
        input: input.to_owned(),
        reason,
    }
}

fn parse_port(input: &str, port: &str) -> Result<u16, InvalidAddr> {
    port.parse::<u16>()
        .map_err(|_| invalid(input, "the port must be a number from 0 to 65535"))
}

fn parse_host_port(input: &str, rest: &str) -> Result<Addr, InvalidAddr> {
    if let Ok(sa) = rest.parse::<SocketAddr>() {
        return Ok(sa.into());
    }
    if rest.starts_with('[') {
        return Err(invalid(input, "expected [IPv6]:port, e.g. [::1]:3000"));
    }
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(invalid(
            input,
            "a TCP address needs a port, e.g. localhost:3000",
        ));
    };
    if host.is_empty() {
        return Err(invalid(
            input,
            "the host is empty; write 127.0.0.1:PORT or just the port",
        ));
    }
    if host.contains(':') {
        return Err(invalid(
            input,
            "put IPv6 addresses in brackets, e.g. [::1]:3000",
        ));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(invalid(input, "the host contains a space or '/'"));
    }
    Ok(Addr::tcp(host, parse_port(input, port)?))
}

impl FromStr for Addr {
    type Err = InvalidAddr;

    fn from_str(input: &str) -> Result<Self, InvalidAddr> {
        if input.is_empty() {
            return Err(invalid(input, "the address is empty"));
        }
        if let Some(path) = input.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid(input, "unix:// needs a path"));
            }
            return Ok(Addr::unix(path));
        }
        if let Some(rest) = input.strip_prefix("tcp://") {
            return parse_host_port(input, rest);
        }
        if let Some(rest) = input.strip_prefix("tls://") {
            return match parse_host_port(input, rest)? {
                Addr::Tcp { host, port } => Ok(Addr::Tls { host, port }),
                other => Ok(other),
            };
        }
        if let Some(name) = input.strip_prefix("memory://") {
            return Ok(Addr::memory(name));
        }
        if input.contains("://") {
            return Err(invalid(
                input,
                "unknown scheme; use tcp://, tls://, unix:// or memory://",
            ));
        }
        if input.contains('/') {
            return Ok(Addr::unix(input));
        }
        if input.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Addr::tcp(DEFAULT_HOST, parse_port(input, input)?));
        }
        if input.contains(':') {
            return parse_host_port(input, input);
        }
        Err(invalid(
            input,
            "not a port, host:port or path; write ./NAME or unix://NAME for a Unix socket in this directory",
        ))
    }
}

impl From<u16> for Addr {
    fn from(port: u16) -> Self {
        Addr::tcp(DEFAULT_HOST, port)
    }
}

impl From<SocketAddr> for Addr {
    fn from(sa: SocketAddr) -> Self {
        Addr::tcp(sa.ip().to_string(), sa.port())
    }
}

impl From<PathBuf> for Addr {
    fn from(path: PathBuf) -> Self {
        Addr::Unix(path)
    }
}

impl From<&Path> for Addr {
    fn from(path: &Path) -> Self {
        Addr::Unix(path.to_path_buf())
    }
}

/// Anything [`Server::bind`](crate::Server::bind) and
/// [`Socket::connect`](crate::Socket::connect) accept as an address.
///
/// Implemented for [`Addr`], `u16`, `&str`, `String`, [`SocketAddr`],
/// [`PathBuf`] and `&Path`. Strings are parsed by [`Addr::from_str`]; a bad
/// one gives [`InvalidAddr`] naming the input.
///
/// ```
/// use netsock::IntoAddr;
/// assert_eq!(3000.into_addr()?, "127.0.0.1:3000".into_addr()?);
/// # Ok::<(), netsock::Error>(())
/// ```
pub trait IntoAddr {
    /// Converts into an [`Addr`].
    fn into_addr(self) -> Result<Addr, InvalidAddr>;
}

impl IntoAddr for Addr {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self)
    }
}
impl IntoAddr for &Addr {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self.clone())
    }
}
impl IntoAddr for &str {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        self.parse()
    }
}
impl IntoAddr for String {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        self.parse()
    }
}
impl IntoAddr for &String {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        self.parse()
    }
}
impl IntoAddr for u16 {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self.into())
    }
}
impl IntoAddr for SocketAddr {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self.into())
    }
}
impl IntoAddr for PathBuf {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self.into())
    }
}
impl IntoAddr for &PathBuf {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self.as_path().into())
    }
}
impl IntoAddr for &Path {
    fn into_addr(self) -> Result<Addr, InvalidAddr> {
        Ok(self.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_users_write() {
        let ok = [
            ("3000", Addr::tcp("127.0.0.1", 3000)),
            ("0", Addr::tcp("127.0.0.1", 0)),
            ("localhost:80", Addr::tcp("localhost", 80)),
            ("0.0.0.0:1", Addr::tcp("0.0.0.0", 1)),
            ("[::1]:3000", Addr::tcp("::1", 3000)),
            ("tcp://[::1]:3000", Addr::tcp("::1", 3000)),
            ("tcp://example.com:9", Addr::tcp("example.com", 9)),
            ("tls://example.com:9", Addr::tls("example.com", 9)),
            ("tls://[::1]:9", Addr::tls("::1", 9)),
            ("/tmp/my-app", Addr::unix("/tmp/my-app")),
            ("./app.sock", Addr::unix("./app.sock")),
            ("unix://app.sock", Addr::unix("app.sock")),
            ("memory://app", Addr::memory("app")),
            ("memory://", Addr::memory("")),
            ("memory://a/b c", Addr::memory("a/b c")),
        ];
        for (input, want) in ok {
            assert_eq!(input.parse::<Addr>().unwrap(), want, "{input}");
        }
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        for input in [
            "",
            "localhost",
            "65536",
            "host:",
            ":80",
            "host:port",
            "::1:80",
            "[::1]",
            "http://x:1",
            "unix://",
            "tls://host",
            "tls://[::1]",
            "a b:1",
        ] {
            let err = input.parse::<Addr>().unwrap_err();
            assert!(err.input == input, "{input}");
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for a in [
            Addr::tcp("::1", 5),
            Addr::tcp("h", 1),
            Addr::tls("::1", 5),
            Addr::tls("h", 1),
            Addr::unix("/x/y"),
            Addr::memory("m"),
            Addr::memory(""),
        ] {
            assert_eq!(a.to_string().parse::<Addr>().unwrap(), a);
        }
    }
}
