//! Connection middleware: code that sees each client's handshake before the
//! connection is accepted (socket.io's `io.use`).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::conn::handler_table::BoxFuture;
use crate::conn::Data;
use crate::conn::SocketId;
use crate::transport::{PeerAddr, PeerCert, PeerCred};

pub(crate) type MiddlewareFn =
    Arc<dyn Fn(Handshake) -> BoxFuture<Result<Handshake, Refusal>> + Send + Sync>;

/// Why a [middleware](crate::Server::middleware) refuses a client: the
/// `Err` it returns. The client gets the reason as
/// [`RejectReason::Refused`](crate::RejectReason::Refused), and its
/// `connect` fails with
/// [`Error::Rejected`](crate::Error::Rejected)`(RejectReason::Refused(reason))`.
///
/// A type of its own rather than a bare `String`, so that a middleware's
/// signature says what its error is for; it converts from `&str` and
/// `String`, so `Err("no token".into())` reads as before.
///
/// ```
/// use netsock::Refusal;
///
/// let refusal = Refusal::new("no token");
/// assert_eq!(refusal.reason(), "no token");
/// assert_eq!(refusal, Refusal::from("no token"));
/// assert_eq!(refusal.to_string(), "no token");
/// let user = "mallory";
/// let refusal: Refusal = format!("{user} is banned").into();
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Refusal {
    pub(crate) reason: String,
}

impl Refusal {
    /// A refusal with this reason, sent to the client as it is (shortened
    /// if it would not fit in the client's frame limit).
    ///
    /// ```
    /// # use netsock::{Events, Handshake, Refusal, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// fn closed_for_maintenance(io: &Server<Api>) {
    ///     io.middleware(|_hs: Handshake| async { Err(Refusal::new("down for maintenance")) });
    /// }
    /// ```
    pub fn new(reason: impl Into<String>) -> Self {
        Refusal {
            reason: reason.into(),
        }
    }

    /// The reason the client is told.
    ///
    /// ```
    /// assert_eq!(netsock::Refusal::new("who are you?").reason(), "who are you?");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Self {
        Refusal::new(reason)
    }
}

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal::new(reason)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Refusal {}

/// A client's handshake, as [`Server::middleware`](crate::Server::middleware)
/// sees it: who connects, from where, with which credentials, and data to
/// attach to the socket if it is accepted.
///
/// ```
/// # use netsock::{Events, Handshake, Server};
/// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Chat { Hi }
/// # async fn f(io: Server<Chat>) {
/// struct User(String);
/// io.middleware(|mut hs: Handshake| async move {
///     match hs.auth::<String>() {
///         Some(token) if token == "let me in" => {
///             hs.insert(User("alice".into()));
///             Ok(hs)
///         }
///         _ => Err("a valid token is required".into()),
///     }
/// });
/// # }
/// ```
pub struct Handshake {
    pub(crate) id: SocketId,
    pub(crate) peer: PeerAddr,
    pub(crate) cred: Option<PeerCred>,
    pub(crate) cert: Option<Arc<PeerCert>>,
    pub(crate) auth: Option<Vec<u8>>,
    pub(crate) data: Data,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("cred", &self.cred)
            .field("cert", &self.cert.as_ref().map(|c| c.subject()))
            .field("auth_len", &self.auth.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

impl Handshake {
    /// The id the socket will have.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # use netsock::Handshake;
    /// fn log_connects(io: &Server<Api>) {
    ///     io.middleware(|hs: Handshake| async move {
    ///         println!("socket {} connecting from {}", hs.id(), hs.peer_addr());
    ///         Ok(hs)
    ///     });
    /// }
    /// ```
    pub fn id(&self) -> SocketId {
        self.id
    }

    /// The client's address.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// use netsock::{Handshake, PeerAddr};
    /// fn local_only(io: &Server<Api>) {
    ///     io.middleware(|hs: Handshake| async move {
    ///         match hs.peer_addr() {
    ///             PeerAddr::Unix(_) => Ok(hs),
    ///             PeerAddr::Tcp(addr) if addr.ip().is_loopback() => Ok(hs),
    ///             _ => Err("local clients only".into()),
    ///         }
    ///     });
    /// }
    /// ```
    pub fn peer_addr(&self) -> &PeerAddr {
        &self.peer
    }

    /// On a Unix socket, the client process's uid, gid and pid, from the
    /// kernel (not from anything the client sent).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # use netsock::Handshake;
    /// fn same_user_only(io: &Server<Api>, uid: u32) {
    ///     io.middleware(move |hs: Handshake| async move {
    ///         match hs.peer_cred() {
    ///             Some(cred) if cred.uid == uid => Ok(hs),
    ///             _ => Err("not your server".into()),
    ///         }
    ///     });
    /// }
    /// ```
    pub fn peer_cred(&self) -> Option<PeerCred> {
        self.cred
    }

    /// On a TLS server with client authentication (mutual TLS), the
    /// certificate the client presented, already verified against the
    /// server's client roots: who the client is, from its certificate (not
    /// from anything it sent in the clear).
    ///
    /// ```
    /// # use netsock::{Events, Server};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize)] enum Api { Ping }
    /// use netsock::Handshake;
    /// struct Caller(String);
    /// fn known_services_only(io: &Server<Api>) {
    ///     io.middleware(|mut hs: Handshake| async move {
    ///         let name = hs.peer_cert().and_then(|c| c.common_name().map(str::to_owned));
    ///         match name {
    ///             Some(name) if name.starts_with("svc-") => {
    ///                 hs.insert(Caller(name));
    ///                 Ok(hs)
    ///             }
    ///             _ => Err("only our services may connect".into()),
    ///         }
    ///     });
    /// }
    /// ```
    pub fn peer_cert(&self) -> Option<&PeerCert> {
        self.cert.as_deref()
    }

    /// The client's auth payload as sent, if any
    /// ([`SocketBuilder::auth`](crate::SocketBuilder::auth) sends bytes as
    /// they are; [`auth_value`](crate::SocketBuilder::auth_value) encodes a
    /// value with postcard).
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # use netsock::Handshake;
    /// fn require_token(io: &Server<Api>) {
    ///     io.middleware(|hs: Handshake| async move {
    ///         match hs.auth_bytes() {
    ///             Some(b"s3cret") => Ok(hs),
    ///             _ => Err("bad or missing token".into()),
    ///         }
    ///     });
    /// }
    /// // The client: Socket::<Api>::builder().auth("s3cret").connect(addr)
    /// ```
    pub fn auth_bytes(&self) -> Option<&[u8]> {
        self.auth.as_deref()
    }

    /// The client's auth payload decoded as `T`; `None` when absent or not
    /// a `T`.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # use netsock::Handshake;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Login { user: String, pin: u32 }
    ///
    /// fn check_login(io: &Server<Api>) {
    ///     io.middleware(|hs: Handshake| async move {
    ///         match hs.auth::<Login>() {
    ///             Some(login) if login.pin == 1234 => Ok(hs),
    ///             _ => Err("log in first".into()),
    ///         }
    ///     });
    /// }
    /// // The client: Socket::<Api>::builder().auth_value(&Login { .. })?.connect(addr)
    /// ```
    pub fn auth<T: DeserializeOwned>(&self) -> Option<T> {
        postcard::from_bytes(self.auth.as_deref()?).ok()
    }

    /// Attaches a value to the socket, readable later with
    /// [`Socket::data`](crate::Socket::data) in every handler. One value per
    /// type; a second insert replaces the first.
    ///
    /// ```
    /// # use netsock::{Events, Server, Socket};
    /// # #[derive(Events, serde::Serialize, serde::Deserialize, Debug)]
    /// # enum Api { Log(String), #[request(response = i64)] Sum(Vec<i64>) }
    /// # use netsock::Handshake;
    /// struct User(String);
    ///
    /// fn identify(io: &Server<Api>) {
    ///     io.middleware(|mut hs: Handshake| async move {
    ///         let name = hs.auth::<String>().unwrap_or_else(|| "guest".into());
    ///         hs.insert(User(name));
    ///         Ok(hs)
    ///     });
    ///     io.on_connection(|socket: Socket<Api>| async move {
    ///         let user = socket.data::<User>().expect("set by the middleware");
    ///         println!("{} connected", user.0);
    ///         Ok(())
    ///     });
    /// }
    /// ```
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.data.insert(
            TypeId::of::<T>(),
            Arc::new(value) as Arc<dyn Any + Send + Sync>,
        );
    }
}
