//! TLS settings (the `tls` feature): the certificates a server presents,
//! the roots each side trusts, and the client's certificate for mutual TLS.
//!
//! These are values, parsed and checked when made; the handshake itself is
//! the transport's (`transport/tls.rs`). Crypto is rustls with its `ring`
//! provider, which builds with a C compiler alone (rustls' default,
//! `aws-lc-rs`, also needs cmake); it is set per configuration, so netsock
//! never installs a process-wide default provider behind the program's back.
//!
//! ```
//! # fn pems() -> (String, String, String) {
//! #     let ca_key = rcgen::KeyPair::generate().unwrap();
//! #     let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! #     ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! #     let ca_cert = ca.self_signed(&ca_key).unwrap();
//! #     let key = rcgen::KeyPair::generate().unwrap();
//! #     let cert = rcgen::CertificateParams::new(vec!["svc.internal".to_string()]).unwrap()
//! #         .signed_by(&key, &ca_cert, &ca_key).unwrap();
//! #     (ca_cert.pem(), cert.pem(), key.serialize_pem())
//! # }
//! use netsock::{ClientTls, ServerTls, TlsIdentity, TlsRoots};
//!
//! let (ca_pem, cert_pem, key_pem) = pems(); // PEM text, e.g. read from files
//! let server = ServerTls::from_pem(&cert_pem, &key_pem)?;
//! let client = ClientTls::with_roots(TlsRoots::from_pem(&ca_pem)?);
//! // Mutual TLS: the server checks clients against a CA, each client shows its own certificate.
//! let server = server.client_auth(TlsRoots::from_pem(&ca_pem)?);
//! let client = client.identity(TlsIdentity::from_pem(&cert_pem, &key_pem)?);
//! # Ok::<(), netsock::Error>(())
//! ```

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls;

use crate::error::{Error, Result};

fn config_error(reason: impl Into<String>) -> Error {
    Error::TlsConfig {
        reason: reason.into(),
    }
}

/// The crypto provider every configuration uses: `ring`.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{what}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{what}: no \"-----BEGIN CERTIFICATE-----\" block found"
        )));
    }
    Ok(certs)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| config_error(format!("{what}: cannot read {}: {e}", path.display())))
}

/// Certificate authorities to trust: a server's certificate (on a client)
/// or clients' certificates (on a server doing mutual TLS) must be issued
/// by one of them.
///
/// ```
/// use netsock::TlsRoots;
/// // From PEM text holding one or more certificates ...
/// assert!(TlsRoots::from_pem("not a certificate").is_err());
/// // ... from a file, or from the operating system's store.
/// let err = TlsRoots::from_pem_file("/nonexistent/ca.pem").unwrap_err();
/// assert!(err.to_string().contains("/nonexistent/ca.pem"));
/// ```
#[derive(Clone)]
pub struct TlsRoots {
    store: Arc<rustls::RootCertStore>,
}

impl fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsRoots")
            .field("certificates", &self.store.len())
            .finish()
    }
}

impl TlsRoots {
    /// The CA certificates in `pem` (PEM text, one or more
    /// `CERTIFICATE` blocks).
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
    /// # let ca_pem = ca.cert.pem();
    /// let roots = netsock::TlsRoots::from_pem(&ca_pem)?;
    /// assert_eq!(roots.len(), 1);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self> {
        let mut store = rustls::RootCertStore::empty();
        for cert in certs_from_pem(pem.as_ref(), "roots")? {
            store
                .add(cert)
                .map_err(|e| config_error(format!("roots: unusable CA certificate: {e}")))?;
        }
        Ok(TlsRoots {
            store: Arc::new(store),
        })
    }

    /// The CA certificates in the PEM file at `path`.
    ///
    /// ```no_run
    /// let roots = netsock::TlsRoots::from_pem_file("/etc/my-service/ca.pem")?;
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        Self::from_pem(read_file(path, "roots")?)
            .map_err(|e| config_error(format!("{} ({})", e, path.display())))
    }

    /// The operating system's trusted roots (what a browser trusts: public
    /// CAs, plus any the administrator added), through
    /// `rustls-native-certs`. Fails when none can be loaded.
    ///
    /// ```no_run
    /// let roots = netsock::TlsRoots::native()?;
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn native() -> Result<Self> {
        let found = rustls_native_certs::load_native_certs();
        let mut store = rustls::RootCertStore::empty();
        let (added, _ignored) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
            return Err(config_error(format!(
                "no trusted roots found in the system store ({}); give roots as PEM with TlsRoots::from_pem_file",
                if errors.is_empty() { "it is empty".to_string() } else { errors.join("; ") }
            )));
        }
        Ok(TlsRoots {
            store: Arc::new(store),
        })
    }

    /// How many certificates these roots hold.
    ///
    /// ```no_run
    /// assert!(netsock::TlsRoots::native()?.len() > 0);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether there are none (never, for roots made by this type's
    /// constructors).
    ///
    /// ```
    /// # let ca = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
    /// assert!(!netsock::TlsRoots::from_pem(ca.cert.pem())?.is_empty());
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

/// A certificate chain and its private key: what a server presents, or a
/// client for mutual TLS.
///
/// ```
/// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
/// # let (cert_pem, key_pem) = (c.cert.pem(), c.key_pair.serialize_pem());
/// let identity = netsock::TlsIdentity::from_pem(&cert_pem, &key_pem)?;
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// From PEM text: `chain` holds the certificate first, then any
    /// intermediates; `key` its private key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// ```
    /// let err = netsock::TlsIdentity::from_pem("", "").unwrap_err();
    /// assert!(err.to_string().contains("no \"-----BEGIN CERTIFICATE-----\" block"));
    /// ```
    pub fn from_pem(chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Self> {
        let chain = certs_from_pem(chain.as_ref(), "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key.as_ref())
            .map_err(|e| config_error(format!("private key: no usable PEM key found: {e}")))?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
        })
    }

    /// From PEM files: the certificate chain, and its private key.
    ///
    /// ```no_run
    /// let identity = netsock::TlsIdentity::from_pem_files("/etc/svc/cert.pem", "/etc/svc/key.pem")?;
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let (chain, key) = (chain.as_ref(), key.as_ref());
        let chain_pem = read_file(chain, "certificate chain")?;
        let key_pem = read_file(key, "private key")?;
        Self::from_pem(chain_pem, key_pem)
            .map_err(|e| config_error(format!("{e} ({} and {})", chain.display(), key.display())))
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        self.key.clone_key()
    }
}

/// A server's TLS: its certificate, and, for mutual TLS, the roots its
/// clients' certificates must chain to. Give it to
/// [`ServerBuilder::tls`](crate::ServerBuilder::tls); replace it while the
/// server runs with [`Server::reload_tls`](crate::Server::reload_tls).
///
/// ```
/// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
/// # let (cert_pem, key_pem, ca_pem) = (c.cert.pem(), c.key_pair.serialize_pem(), c.cert.pem());
/// use netsock::{ServerTls, TlsRoots};
/// let tls = ServerTls::from_pem(&cert_pem, &key_pem)?
///     .client_auth(TlsRoots::from_pem(&ca_pem)?); // mutual TLS
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ServerTls {
    identity: TlsIdentity,
    clients: Option<(TlsRoots, bool)>,
}

impl ServerTls {
    /// Presents `identity`; clients are not asked for certificates.
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// # let (cert_pem, key_pem) = (c.cert.pem(), c.key_pair.serialize_pem());
    /// let identity = netsock::TlsIdentity::from_pem(&cert_pem, &key_pem)?;
    /// let tls = netsock::ServerTls::new(identity);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn new(identity: TlsIdentity) -> Self {
        ServerTls {
            identity,
            clients: None,
        }
    }

    /// Presents the certificate chain and key in PEM text
    /// ([`TlsIdentity::from_pem`]).
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// let tls = netsock::ServerTls::from_pem(c.cert.pem(), c.key_pair.serialize_pem())?;
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn from_pem(chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> Result<Self> {
        Ok(Self::new(TlsIdentity::from_pem(chain, key)?))
    }

    /// Presents the certificate chain and key in PEM files
    /// ([`TlsIdentity::from_pem_files`]).
    ///
    /// ```no_run
    /// let tls = netsock::ServerTls::from_pem_files("/etc/svc/cert.pem", "/etc/svc/key.pem")?;
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::new(TlsIdentity::from_pem_files(chain, key)?))
    }

    /// Mutual TLS: every client must present a certificate issued by one of
    /// `roots`; one without, or with another, fails its handshake
    /// ([`TlsError::ClientCertMissing`](crate::TlsError::ClientCertMissing),
    /// [`TlsError::CertRefused`](crate::TlsError::CertRefused) on its side)
    /// and is counted in [`Rejects::tls`](crate::Rejects::tls). The verified
    /// certificate is then [`Handshake::peer_cert`](crate::Handshake::peer_cert)
    /// and [`Socket::peer_cert`](crate::Socket::peer_cert).
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// # let (cert_pem, key_pem, ca_pem) = (c.cert.pem(), c.key_pair.serialize_pem(), c.cert.pem());
    /// let tls = netsock::ServerTls::from_pem(&cert_pem, &key_pem)?
    ///     .client_auth(netsock::TlsRoots::from_pem(&ca_pem)?);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn client_auth(mut self, roots: TlsRoots) -> Self {
        self.clients = Some((roots, true));
        self
    }

    /// Like [`client_auth`](Self::client_auth), but a client without a
    /// certificate is let in too (with no
    /// [`peer_cert`](crate::Socket::peer_cert)); one with a certificate
    /// that does not verify is still refused.
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// # let (cert_pem, key_pem, ca_pem) = (c.cert.pem(), c.key_pair.serialize_pem(), c.cert.pem());
    /// let tls = netsock::ServerTls::from_pem(&cert_pem, &key_pem)?
    ///     .client_auth_optional(netsock::TlsRoots::from_pem(&ca_pem)?);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn client_auth_optional(mut self, roots: TlsRoots) -> Self {
        self.clients = Some((roots, false));
        self
    }

    /// The rustls configuration: fails when the key does not match the
    /// certificate, or the roots cannot verify anything.
    pub(crate) fn build(&self) -> Result<Arc<rustls::ServerConfig>> {
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(e.to_string()))?;
        let builder = match &self.clients {
            None => builder.with_no_client_auth(),
            Some((roots, required)) => {
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    roots.store.clone(),
                    provider,
                );
                let verifier = if *required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| config_error(format!("client roots: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(self.identity.chain.clone(), self.identity.key())
            .map_err(|e| config_error(format!("server certificate and key: {e}")))?;
        Ok(Arc::new(config))
    }
}

/// A client's TLS: the roots it trusts, the name it expects on the
/// server's certificate, and its own certificate for mutual TLS. Give it to
/// [`SocketBuilder::tls`](crate::SocketBuilder::tls) and connect to a
/// `tls://host:port` address; it stays with the socket, so reconnects use
/// it too.
///
/// ```
/// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
/// # let (ca_pem, cert_pem, key_pem) = (c.cert.pem(), c.cert.pem(), c.key_pair.serialize_pem());
/// use netsock::{ClientTls, TlsIdentity, TlsRoots};
/// let tls = ClientTls::with_roots(TlsRoots::from_pem(&ca_pem)?)
///     .identity(TlsIdentity::from_pem(&cert_pem, &key_pem)?) // mutual TLS
///     .server_name("svc.internal"); // when the address says otherwise
/// # Ok::<(), netsock::Error>(())
/// ```
#[derive(Clone)]
pub struct ClientTls {
    roots: TlsRoots,
    identity: Option<TlsIdentity>,
    server_name: Option<String>,
    /// Built on first use and shared by clones, so that reconnects (and
    /// sockets made from one `ClientTls`) resume TLS sessions.
    built: Arc<Mutex<Option<Arc<rustls::ClientConfig>>>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots)
            .field("identity", &self.identity)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClientTls {
    /// Trusts servers whose certificates chain to `roots`.
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// let tls = netsock::ClientTls::with_roots(netsock::TlsRoots::from_pem(c.cert.pem())?);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn with_roots(roots: TlsRoots) -> Self {
        ClientTls {
            roots,
            identity: None,
            server_name: None,
            built: Arc::default(),
        }
    }

    /// Trusts the operating system's roots ([`TlsRoots::native`]): for
    /// servers with publicly issued certificates.
    ///
    /// ```no_run
    /// let tls = netsock::ClientTls::native_roots()?;
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn native_roots() -> Result<Self> {
        Ok(Self::with_roots(TlsRoots::native()?))
    }

    /// Presents `identity` when the server asks for a client certificate
    /// (mutual TLS).
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// # let roots = netsock::TlsRoots::from_pem(c.cert.pem())?;
    /// let me = netsock::TlsIdentity::from_pem(c.cert.pem(), c.key_pair.serialize_pem())?;
    /// let tls = netsock::ClientTls::with_roots(roots).identity(me);
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn identity(mut self, identity: TlsIdentity) -> Self {
        self.identity = Some(identity);
        self.built = Arc::default();
        self
    }

    /// Expects the server's certificate to be valid for `name` (a DNS name
    /// or an IP address) instead of the host in the address: to connect by
    /// IP address to a server whose certificate names its DNS name, say.
    ///
    /// ```
    /// # let c = rcgen::generate_simple_self_signed(vec!["svc".to_string()]).unwrap();
    /// # let roots = netsock::TlsRoots::from_pem(c.cert.pem())?;
    /// let tls = netsock::ClientTls::with_roots(roots).server_name("svc.internal");
    /// // then: Socket::builder().tls(tls).connect("tls://10.0.0.7:7000")
    /// # Ok::<(), netsock::Error>(())
    /// ```
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The name to check the server's certificate against, when connecting
    /// to `host`.
    pub(crate) fn name_for(&self, host: &str) -> Result<ServerName<'static>> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_owned()).map_err(|_| {
            config_error(format!(
                "{name:?} is not a DNS name or IP address to check the server's certificate against; set ClientTls::server_name"
            ))
        })
    }

    /// The rustls configuration, built once.
    pub(crate) fn config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let mut built = crate::sync::lock(&self.built);
        if let Some(config) = &*built {
            return Ok(config.clone());
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| config_error(e.to_string()))?
            .with_root_certificates(self.roots.store.clone());
        let config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key())
                .map_err(|e| config_error(format!("client certificate and key: {e}")))?,
        };
        let config = Arc::new(config);
        *built = Some(config.clone());
        Ok(config)
    }
}
