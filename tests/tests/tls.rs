//! TLS and mutual TLS over real TCP on 127.0.0.1, with certificates made
//! at test time: a working connection and the certificate each side sees,
//! each handshake failure with its typed cause (and the server counting it
//! in `rejects.tls` while it keeps serving), client authentication, the
//! handshake timeout, certificate rotation, reconnecting through a cut.

use std::time::Duration;

use netsock::{
    Addr, ClientTls, Error, Handshake, PeerAddr, Reconnect, Reconnected, Server, ServerBuilder,
    ServerTls, Socket, SubjectAltName, TlsError, TlsIdentity, TlsRoots,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tests::api::{Api, ApiEmit, ApiHandle};
use tests::proxy::Proxy;
use tests::{eventually, within, Raw, TempDir, Transport};
use tokio::sync::mpsc;

/// A throwaway certificate authority.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its key, as PEM.
struct Issued {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn roots(&self) -> TlsRoots {
        TlsRoots::from_pem(self.cert.pem()).unwrap()
    }

    /// A certificate for `cn`, valid for `names` (DNS names or IPs).
    fn issue(&self, cn: &str, names: &[&str]) -> Issued {
        self.issue_with(cn, names, |_| {})
    }

    fn issue_with(
        &self,
        cn: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "netsock tests");
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for 127.0.0.1 and localhost.
    fn server(&self, cn: &str) -> ServerTls {
        let issued = self.issue(cn, &["localhost", "127.0.0.1"]);
        ServerTls::from_pem(issued.cert, issued.key).unwrap()
    }

    fn identity(&self, cn: &str) -> TlsIdentity {
        let issued = self.issue(cn, &[&format!("{cn}.clients.internal")]);
        TlsIdentity::from_pem(issued.cert, issued.key).unwrap()
    }
}

/// A TLS server on 127.0.0.1 that answers `Sum`, with `builder`'s options.
async fn serve(builder: ServerBuilder<Api>) -> Server<Api> {
    serve_at(builder, "127.0.0.1:0").await
}

async fn serve_at(builder: ServerBuilder<Api>, addr: &str) -> Server<Api> {
    let io = builder.bind(addr).await.expect("bind");
    io.on_connection(|socket: Socket<Api>| async move {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        Ok(())
    });
    io.spawn();
    io
}

async fn connect(addr: &Addr, tls: ClientTls) -> netsock::Result<Socket<Api>> {
    within(
        Socket::<Api>::builder()
            .tls(tls)
            .no_reconnect()
            .connect(addr),
    )
    .await
}

/// The cause of a TLS failure, or a panic naming what came instead.
fn cause<T>(result: netsock::Result<T>) -> TlsError {
    match result {
        Err(Error::Tls { cause, .. }) => cause,
        Err(other) => panic!("expected a TLS error, got {other:?}"),
        Ok(_) => panic!("expected a TLS error, but it connected"),
    }
}

/// The server still serves a good client after refusing a bad one.
async fn still_serves(io: &Server<Api>, tls: ClientTls) {
    let socket = connect(io.local_addr(), tls).await.expect("a good client");
    assert_eq!(within(socket.sum(vec![1, 2, 3])).await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_tls_and_the_client_sees_the_servers_certificate() {
    let ca = Ca::new("test CA");
    let io = serve(Server::builder().tls(ca.server("orders"))).await;
    assert!(matches!(io.local_addr(), Addr::Tls { .. }));
    let socket = connect(io.local_addr(), ClientTls::with_roots(ca.roots()))
        .await
        .unwrap();
    assert_eq!(within(socket.sum(vec![20, 22])).await.unwrap(), 42);
    let cert = socket.peer_cert().expect("the server's certificate");
    assert_eq!(cert.subject(), "CN=orders, O=netsock tests");
    assert_eq!(cert.common_name(), Some("orders"));
    assert_eq!(
        cert.subject_alt_names(),
        [
            SubjectAltName::Dns("localhost".into()),
            SubjectAltName::Ip([127, 0, 0, 1].into()),
        ]
    );
    assert!(!cert.der().is_empty());
    assert!(matches!(socket.peer_addr(), PeerAddr::Tls(_)));
    // By name too: the certificate lists localhost.
    let port = io.local_addr().port().unwrap();
    let by_name = connect(
        &Addr::tls("localhost", port),
        ClientTls::with_roots(ca.roots()),
    )
    .await
    .unwrap();
    assert_eq!(within(by_name.sum(vec![1])).await.unwrap(), 1);
    io.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_signed_by_another_ca_is_an_unknown_issuer() {
    let (ca, other) = (Ca::new("test CA"), Ca::new("someone else"));
    let io = serve(Server::builder().tls(ca.server("orders"))).await;
    let tls = ClientTls::with_roots(other.roots());
    assert_eq!(
        cause(connect(io.local_addr(), tls).await),
        TlsError::UnknownIssuer
    );
    // The server heard the client's alert, and counted it.
    eventually(|| io.metrics().rejects.tls == 1).await;
    still_serves(&io, ClientTls::with_roots(ca.roots())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_a_name_mismatch() {
    let ca = Ca::new("test CA");
    let issued = ca.issue("elsewhere", &["elsewhere.internal"]);
    let tls = ServerTls::from_pem(issued.cert, issued.key).unwrap();
    let io = serve(Server::builder().tls(tls)).await;
    let err = connect(io.local_addr(), ClientTls::with_roots(ca.roots())).await;
    let err_text = format!("{}", err.as_ref().err().unwrap());
    assert_eq!(
        cause(err),
        TlsError::NameMismatch {
            name: "127.0.0.1".into()
        }
    );
    assert!(err_text.contains("ClientTls::server_name"), "{err_text}");
    // The name to check can be set apart from the address.
    let tls = ClientTls::with_roots(ca.roots()).server_name("elsewhere.internal");
    let socket = connect(io.local_addr(), tls).await.unwrap();
    assert_eq!(within(socket.sum(vec![2, 2])).await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_expired() {
    let ca = Ca::new("test CA");
    let issued = ca.issue_with("old", &["127.0.0.1"], |p| {
        p.not_before = rcgen::date_time_ymd(2001, 1, 1);
        p.not_after = rcgen::date_time_ymd(2002, 1, 1);
    });
    let tls = ServerTls::from_pem(issued.cert, issued.key).unwrap();
    let io = serve(Server::builder().tls(tls)).await;
    assert_eq!(
        cause(connect(io.local_addr(), ClientTls::with_roots(ca.roots())).await),
        TlsError::Expired
    );
    eventually(|| io.metrics().rejects.tls == 1).await;
}

/// A mutual-TLS server whose middleware reports each client's certificate
/// subject and names.
async fn mtls_server(
    ca: &Ca,
) -> (
    Server<Api>,
    mpsc::UnboundedReceiver<(String, Vec<SubjectAltName>)>,
) {
    let tls = ca.server("orders").client_auth(ca.roots());
    let io = serve(Server::builder().tls(tls)).await;
    let (tx, rx) = mpsc::unbounded_channel();
    io.middleware(move |hs: Handshake| {
        let seen = hs
            .peer_cert()
            .map(|c| (c.subject().to_owned(), c.subject_alt_names().to_vec()));
        let tx = tx.clone();
        async move {
            match seen {
                Some(seen) => {
                    let _ = tx.send(seen);
                    Ok(hs)
                }
                None => Err("no client certificate".into()),
            }
        }
    });
    (io, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_a_client_and_middleware_sees_who_it_is() {
    let ca = Ca::new("test CA");
    let (io, mut seen) = mtls_server(&ca).await;
    let tls = ClientTls::with_roots(ca.roots()).identity(ca.identity("billing"));
    let socket = connect(io.local_addr(), tls).await.unwrap();
    assert_eq!(within(socket.sum(vec![5, 5])).await.unwrap(), 10);
    let (subject, sans) = within(seen.recv()).await.unwrap();
    assert_eq!(subject, "CN=billing, O=netsock tests");
    assert_eq!(
        sans,
        [SubjectAltName::Dns("billing.clients.internal".into())]
    );
    // And on the server's socket, like `peer_cred()` on a Unix socket.
    let on_server = io.sockets();
    let cert = on_server[0].peer_cert().expect("the client's certificate");
    assert_eq!(cert.common_name(), Some("billing"));
    assert_eq!(io.metrics().rejects.tls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let ca = Ca::new("test CA");
    let (io, _seen) = mtls_server(&ca).await;
    let err = connect(io.local_addr(), ClientTls::with_roots(ca.roots())).await;
    assert_eq!(cause(err), TlsError::ClientCertMissing);
    eventually(|| io.metrics().rejects.tls == 1).await;
    let good = ClientTls::with_roots(ca.roots()).identity(ca.identity("billing"));
    still_serves(&io, good).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_certificate_from_another_ca() {
    let (ca, other) = (Ca::new("test CA"), Ca::new("someone else"));
    let (io, _seen) = mtls_server(&ca).await;
    let tls = ClientTls::with_roots(ca.roots()).identity(other.identity("mallory"));
    match cause(connect(io.local_addr(), tls).await) {
        TlsError::CertRefused { alert } => assert_eq!(alert, "UnknownCA"),
        other => panic!("expected CertRefused, got {other:?}"),
    }
    eventually(|| io.metrics().rejects.tls == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_client_on_a_tls_server_is_told_to_use_tls() {
    let ca = Ca::new("test CA");
    let io = serve(Server::builder().tls(ca.server("orders"))).await;
    let port = io.local_addr().port().unwrap();
    let plain = within(
        Socket::<Api>::builder()
            .no_reconnect()
            .connect(Addr::tcp("127.0.0.1", port)),
    )
    .await;
    assert_eq!(cause(plain), TlsError::TlsRequired);
    eventually(|| io.metrics().rejects.tls == 1).await;
    still_serves(&io, ClientTls::with_roots(ca.roots())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_on_a_plaintext_server_is_told_it_is_not_tls() {
    let ca = Ca::new("test CA");
    let io = serve(Server::builder()).await;
    let port = io.local_addr().port().unwrap();
    let err = connect(
        &Addr::tls("127.0.0.1", port),
        ClientTls::with_roots(ca.roots()),
    )
    .await;
    assert_eq!(cause(err), TlsError::NotTls);
    eventually(|| io.metrics().rejects.tls == 1).await;
    let plain = within(Socket::<Api>::connect(io.local_addr()))
        .await
        .unwrap();
    assert_eq!(within(plain.sum(vec![1, 1])).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_timeout_covers_the_tls_handshake() {
    let ca = Ca::new("test CA");
    // Server side: a client that opens TCP and never says hello.
    let io = serve(
        Server::builder()
            .tls(ca.server("orders"))
            .handshake_timeout(Duration::from_millis(200)),
    )
    .await;
    let port = io.local_addr().port().unwrap();
    let silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    eventually(|| io.metrics().rejects.timed_out == 1).await;
    drop(silent);
    // Client side: a server that accepts TCP and never answers.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = mute.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (stream, _) = mute.accept().await.unwrap();
        std::future::pending::<()>().await;
        drop(stream);
    });
    let err = within(
        Socket::<Api>::builder()
            .tls(ClientTls::with_roots(ca.roots()))
            .handshake_timeout(Duration::from_millis(200))
            .no_reconnect()
            .connect(Addr::tls("127.0.0.1", port)),
    )
    .await;
    assert!(
        matches!(err, Err(Error::HandshakeTimeout { .. })),
        "{err:?}"
    );
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_while_the_server_runs() {
    let ca = Ca::new("test CA");
    let io = serve(Server::builder().tls(ca.server("first"))).await;
    let roots = || ClientTls::with_roots(ca.roots());
    let before = connect(io.local_addr(), roots()).await.unwrap();
    assert_eq!(before.peer_cert().unwrap().common_name(), Some("first"));

    io.reload_tls(ca.server("second")).unwrap();
    let after = connect(io.local_addr(), roots()).await.unwrap();
    assert_eq!(after.peer_cert().unwrap().common_name(), Some("second"));
    // The open connection keeps working on its old certificate.
    assert_eq!(within(before.sum(vec![1, 2])).await.unwrap(), 3);
    assert_eq!(before.peer_cert().unwrap().common_name(), Some("first"));

    // An unusable replacement is refused, and the current one stays.
    let other = Ca::new("other").issue("x", &["127.0.0.1"]);
    let mismatched = ServerTls::from_pem(&other.cert, ca.issue("y", &["z"]).key).unwrap();
    assert!(matches!(
        io.reload_tls(mismatched),
        Err(Error::TlsConfig { .. })
    ));
    let still = connect(io.local_addr(), roots()).await.unwrap();
    assert_eq!(still.peer_cert().unwrap().common_name(), Some("second"));

    // A plaintext server has nothing to rotate.
    let plain = serve(Server::builder()).await;
    assert!(matches!(
        plain.reload_tls(ca.server("x")),
        Err(Error::TlsConfig { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reconnects_over_tls_after_the_network_drops() {
    let ca = Ca::new("test CA");
    let (io, mut seen) = mtls_server(&ca).await;
    let port = io.local_addr().port().unwrap();
    // The proxy forwards raw TCP: TLS runs end to end through it.
    let dir = TempDir::new();
    let proxy = Proxy::start(Transport::Tcp, &dir, Addr::tcp("127.0.0.1", port)).await;
    let Addr::Tcp { port: via, .. } = proxy.addr().clone() else {
        panic!("a TCP proxy")
    };
    let tls = ClientTls::with_roots(ca.roots()).identity(ca.identity("billing"));
    let socket = within(
        Socket::<Api>::builder()
            .tls(tls)
            .reconnect(
                Reconnect::new()
                    .initial_delay(Duration::from_millis(5))
                    .max_delay(Duration::from_millis(50)),
            )
            .connect(Addr::tls("127.0.0.1", via)),
    )
    .await
    .unwrap();
    within(seen.recv()).await.unwrap();
    let (tx, mut reconnects) = mpsc::unbounded_channel::<Reconnected>();
    socket.on_reconnect(move |r| {
        let _ = tx.send(r);
        async {}
    });
    for _ in 0..3 {
        assert_eq!(proxy.cut(), 1);
        within(reconnects.recv()).await.unwrap();
        // A new TLS handshake each time, with the client's certificate.
        let (subject, _) = within(seen.recv()).await.unwrap();
        assert_eq!(subject, "CN=billing, O=netsock tests");
        assert_eq!(within(socket.sum(vec![3, 4])).await.unwrap(), 7);
    }
    assert_eq!(io.metrics().rejects.tls, 0);
}

#[tokio::test]
async fn tls_addresses_need_tls_settings() {
    let err = Server::<Api>::bind("tls://127.0.0.1:0")
        .await
        .err()
        .unwrap();
    assert!(matches!(&err, Error::TlsConfig { reason } if reason.contains("ServerBuilder::tls")));
    let err = Socket::<Api>::connect("tls://127.0.0.1:1")
        .await
        .err()
        .unwrap();
    assert!(matches!(&err, Error::TlsConfig { reason } if reason.contains("SocketBuilder::tls")));
    let ca = Ca::new("test CA");
    let dir = TempDir::new();
    let unix = Server::<Api>::builder()
        .tls(ca.server("x"))
        .bind(dir.path().join("s.sock"))
        .await;
    assert!(matches!(unix, Err(Error::TlsConfig { .. })));
    assert!(matches!(
        TlsRoots::from_pem("-----BEGIN NOTHING-----"),
        Err(Error::TlsConfig { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_peer_that_stops_reading_is_dropped_after_the_write_timeout() {
    use netsock::DisconnectReason;
    use tokio_rustls::rustls;

    let ca = Ca::new("test CA");
    let io = serve(
        Server::builder()
            .tls(ca.server("orders"))
            .write_timeout(Duration::from_millis(300)),
    )
    .await;
    let (tx, mut connected) = mpsc::unbounded_channel();
    io.on_connection(move |socket: Socket<Api>| {
        socket.on_sum(|numbers| async move { numbers.iter().sum::<i64>() });
        let _ = tx.send(socket);
        async { Ok(()) }
    });
    // A hand-driven client: TLS, the netsock handshake, then it never reads.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let port = io.local_addr().port().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls =
        within(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp))
            .await
            .unwrap();
    let mut raw = Raw::from_stream(Box::new(tls));
    within(raw.handshake::<Api>()).await;
    let stuck = within(connected.recv()).await.unwrap();
    // Push until the socket, the pump's pipe and the queue are full and the
    // write timeout ends the connection.
    let pusher = tokio::spawn({
        let stuck = stuck.clone();
        async move { while stuck.emit_blob(vec![7; 64 * 1024]).await.is_ok() {} }
    });
    let reason = within(stuck.closed()).await;
    assert!(
        matches!(reason, DisconnectReason::WriteTimeout { .. }),
        "{reason:?}"
    );
    within(pusher).await.unwrap();
    eventually(|| io.sockets().is_empty()).await;
    // The server serves on.
    still_serves(&io, ClientTls::with_roots(ca.roots())).await;
    drop(raw);
}

#[test]
fn system_roots_load_or_say_why() {
    // What the machine has varies (a bare container may have none): either
    // some roots, or a TlsConfig error that says where to get them instead.
    match TlsRoots::native() {
        Ok(roots) => assert!(!roots.is_empty()),
        Err(Error::TlsConfig { reason }) => {
            assert!(reason.contains("TlsRoots::from_pem_file"), "{reason}")
        }
        Err(other) => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optional_client_auth_lets_anonymous_clients_in_but_not_foreign_ones() {
    let (ca, other) = (Ca::new("test CA"), Ca::new("someone else"));
    let tls = ca.server("orders").client_auth_optional(ca.roots());
    let io = serve(Server::builder().tls(tls)).await;
    let anonymous = connect(io.local_addr(), ClientTls::with_roots(ca.roots()))
        .await
        .unwrap();
    assert_eq!(within(anonymous.sum(vec![1, 2])).await.unwrap(), 3);
    assert!(io.sockets()[0].peer_cert().is_none());
    let known = ClientTls::with_roots(ca.roots()).identity(ca.identity("billing"));
    let known = connect(io.local_addr(), known).await.unwrap();
    assert_eq!(within(known.sum(vec![3])).await.unwrap(), 3);
    let names: Vec<_> = io
        .sockets()
        .iter()
        .filter_map(|s| {
            s.peer_cert()
                .and_then(|c| c.common_name().map(str::to_owned))
        })
        .collect();
    assert_eq!(names, ["billing"]);
    let foreign = ClientTls::with_roots(ca.roots()).identity(other.identity("mallory"));
    assert!(matches!(
        cause(connect(io.local_addr(), foreign).await),
        TlsError::CertRefused { .. }
    ));
    eventually(|| io.metrics().rejects.tls == 1).await;
}
