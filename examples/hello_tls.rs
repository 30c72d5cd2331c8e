//! Mutual TLS between a service and its client: a throwaway certificate
//! authority, a certificate for the server and one for the client, a
//! server that lets in only clients with a certificate from that CA and
//! greets each by the name in it. Runs to completion.
//!
//! ```text
//! cargo run --example hello_tls
//! ```

use netsock::{ClientTls, Events, Handshake, Server, ServerTls, Socket, TlsIdentity, TlsRoots};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde::{Deserialize, Serialize};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Events, Serialize, Deserialize, Debug)]
enum Greeter {
    /// Answers with a greeting for the caller named in its certificate.
    #[request(response = String)]
    Hello,
}

// ANCHOR: certificates
/// A certificate authority: in production, your organisation's internal CA
/// (or a tool such as step-ca, cfssl, Vault); here, one made on the spot.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Result<Ca, BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "hello_tls CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        Ok(Ca { cert, key })
    }

    /// A certificate for `name`, valid for the DNS names and IPs in `sans`:
    /// its PEM text and its private key's.
    fn issue(&self, name: &str, sans: &[&str]) -> Result<(String, String), BoxError> {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}
// ANCHOR_END: certificates

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let ca = Ca::new()?;
    let ca_pem = ca.cert.pem(); // what both sides trust
    let (server_cert, server_key) = ca.issue("greeter", &["localhost", "127.0.0.1"])?;
    let (client_cert, client_key) = ca.issue("billing", &["billing.internal"])?;

    // ANCHOR: server
    let tls =
        ServerTls::from_pem(&server_cert, &server_key)?.client_auth(TlsRoots::from_pem(&ca_pem)?); // mutual TLS: clients need a certificate
    let io = Server::<Greeter>::builder()
        .tls(tls)
        .bind("127.0.0.1:0")
        .await?;
    // The client's verified certificate, in a middleware and on the socket.
    io.middleware(|hs: Handshake| async move {
        match hs.peer_cert().and_then(|cert| cert.common_name()) {
            Some(name) => {
                println!("server: {name} connects from {}", hs.peer_addr());
                Ok(hs)
            }
            None => Err("a certificate with a common name is required".into()),
        }
    });
    io.on_connection(|socket: Socket<Greeter>| async move {
        let caller = socket
            .peer_cert()
            .and_then(|cert| cert.common_name().map(str::to_owned))
            .unwrap_or_default();
        socket.on_hello(move || {
            let caller = caller.clone();
            async move { format!("hello, {caller}") }
        });
        Ok(())
    });
    let running = io.spawn();
    // ANCHOR_END: server

    // ANCHOR: client
    let tls = ClientTls::with_roots(TlsRoots::from_pem(&ca_pem)?)
        .identity(TlsIdentity::from_pem(&client_cert, &client_key)?);
    // io.local_addr() is tls://127.0.0.1:PORT; the certificate lists 127.0.0.1.
    let socket = Socket::<Greeter>::builder()
        .tls(tls)
        .connect(io.local_addr())
        .await?;
    println!("client: {}", socket.hello().await?);
    // ANCHOR_END: client

    // ANCHOR: refused
    // A client without a certificate does not get in, and is told why.
    let anonymous = ClientTls::with_roots(TlsRoots::from_pem(&ca_pem)?);
    match Socket::<Greeter>::builder()
        .tls(anonymous)
        .no_reconnect()
        .connect(io.local_addr())
        .await
    {
        Err(err) => println!("anonymous client: {err}"),
        Ok(_) => return Err("a client without a certificate got in".into()),
    }
    // ANCHOR_END: refused

    socket.close().await;
    running.close().await?;
    println!(
        "server: refused {} TLS handshakes",
        io.metrics().rejects.tls
    );
    Ok(())
}
