//! Built-in HTTPS: a TLS listener for `axum::serve` and a certificate that can be
//! reloaded without a restart.
//!
//! [`TlsListener`] wraps a bound `TcpListener`. A background task accepts TCP connections
//! and runs each TLS handshake in its own task, so a client that connects and says nothing
//! holds up only itself; finished streams reach [`axum::serve::Listener::accept`] through a
//! bounded channel. [`TlsReloader`] re-reads the certificate and key files and swaps them
//! in for new handshakes. [`check_files`] validates the files without binding anything
//! (`tutti server --check`). `pki.rs` makes such files for development and tests; the
//! server wires the listener in `server.rs`.
//!
//! Crypto is rustls with the `ring` provider, passed explicitly, so nothing here depends
//! on a process-wide default provider.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::serve::{Listener, TapIo};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{Error as RustlsError, InconsistentKeys, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once. Past this the accept loop waits and new connections queue
/// in the kernel's backlog, so a flood of silent clients costs bounded memory.
const MAX_PENDING_HANDSHAKES: usize = 1024;

/// Handshaken streams waiting for `accept()`; `axum::serve` drains it quickly.
const ACCEPTED_QUEUE: usize = 64;

/// Where the server's certificate chain and private key live, both PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// Why a certificate or key could not be used. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file is not there.
    #[error("TLS {what} file {} does not exist; check the path or create the file", path.display())]
    Missing {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file that was looked for.
        path: PathBuf,
    },
    /// The file is there but cannot be read.
    #[error("cannot read TLS {what} file {}: {source}; check its permissions", path.display())]
    Unreadable {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file that could not be read.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The file is not well-formed PEM.
    #[error("TLS {what} file {} is not valid PEM ({detail}); it should hold `-----BEGIN ...-----` blocks", path.display())]
    BadPem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The malformed file.
        path: PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// The certificate file has no `CERTIFICATE` block.
    #[error("TLS certificate file {} holds no PEM certificate; expected a `-----BEGIN CERTIFICATE-----` block", path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The key file has no private key block.
    #[error("TLS private key file {} holds no PEM private key; expected a `-----BEGIN PRIVATE KEY-----` (or RSA/EC) block", path.display())]
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
    },
    /// The key belongs to another certificate.
    #[error("TLS private key file {} does not belong to the certificate in {}; use the key that was issued with that certificate", key_file.display(), cert_file.display())]
    KeyMismatch {
        /// The certificate file.
        cert_file: PathBuf,
        /// The key file.
        key_file: PathBuf,
    },
    /// rustls refused the pair for another reason (unsupported key type, unparsable
    /// certificate).
    #[error("TLS certificate {} with key {} cannot be used: {detail}", cert_file.display(), key_file.display())]
    Rejected {
        /// The certificate file.
        cert_file: PathBuf,
        /// The key file.
        key_file: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// The bound listener could not report its address.
    #[error("cannot read the listener's local address: {0}")]
    LocalAddr(io::Error),
}

/// Loads and validates the certificate and key without binding anything.
pub fn check_files(files: &TlsFiles) -> Result<(), TlsError> {
    load_certified_key(files).map(drop)
}

/// A TLS listener for `axum::serve`; see the module docs for how it accepts.
///
/// For `ConnectInfo<SocketAddr>`, serve [`TlsListener::with_connect_info`] instead of the
/// listener itself.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

/// The listener [`TlsListener::with_connect_info`] returns: the same listener, in the one
/// wrapper for which axum provides `SocketAddr: Connected<_>`.
pub type ConnectInfoTlsListener = TapIo<TlsListener, fn(&mut TlsStream<TcpStream>)>;

impl TlsListener {
    /// Loads the certificate and starts accepting on `listener`. Must be called inside a
    /// Tokio runtime. The accept task stops when the returned listener is dropped.
    pub fn new(
        listener: TcpListener,
        files: TlsFiles,
    ) -> Result<(TlsListener, TlsReloader), TlsError> {
        let local_addr = listener.local_addr().map_err(TlsError::LocalAddr)?;
        let reloader = TlsReloader::load(files)?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(reloader.cert.clone())));
        let (sender, accepted) = mpsc::channel(ACCEPTED_QUEUE);
        tokio::spawn(accept_loop(listener, acceptor, sender));
        let listener = TlsListener {
            accepted,
            local_addr,
        };
        Ok((listener, reloader))
    }

    /// This listener in a form that
    /// `axum::serve(_, router.into_make_service_with_connect_info::<SocketAddr>())`
    /// accepts. axum implements `Connected` for `SocketAddr` only over its own
    /// `TcpListener` and over `TapIo`, and the orphan rule forbids adding an impl for ours,
    /// so we wrap it in a `TapIo` that does nothing.
    pub fn with_connect_info(self) -> ConnectInfoTlsListener {
        axum::serve::ListenerExt::tap_io(self, |_| ())
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        if let Some(accepted) = self.accepted.recv().await {
            return accepted;
        }
        // The accept task only stops once we are dropped, so this means it panicked.
        tracing::error!(addr = %self.local_addr, "the TLS accept task stopped; no new connections will be served");
        std::future::pending().await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Swaps in a re-read certificate for new handshakes; open connections keep theirs.
#[derive(Debug, Clone)]
pub struct TlsReloader {
    cert: Arc<ReloadableCert>,
}

impl TlsReloader {
    /// Re-reads the same files. On failure the current certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.cert.files)?;
        *self
            .cert
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        tracing::info!(cert_file = %self.cert.files.cert_file.display(), "reloaded the TLS certificate");
        Ok(())
    }

    /// The files this reloader reads.
    pub fn files(&self) -> &TlsFiles {
        &self.cert.files
    }

    fn load(files: TlsFiles) -> Result<TlsReloader, TlsError> {
        let key = load_certified_key(&files)?;
        let current = RwLock::new(Arc::new(key));
        let cert = Arc::new(ReloadableCert { files, current });
        Ok(TlsReloader { cert })
    }
}

/// The certificate every handshake is answered with, whatever name the client asks for.
struct ReloadableCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// axum serves HTTP/1.1 only (its `http2` feature is off), so that is all we offer.
fn server_config(cert: Arc<ReloadableCert>) -> ServerConfig {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

/// Reads both files and checks the key belongs to the leaf certificate.
fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let chain = load_chain(&files.cert_file)?;
    let key = load_key(&files.key_file)?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|error| match error {
        RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch) => TlsError::KeyMismatch {
            cert_file: files.cert_file.clone(),
            key_file: files.key_file.clone(),
        },
        other => TlsError::Rejected {
            cert_file: files.cert_file.clone(),
            key_file: files.key_file.clone(),
            detail: other.to_string(),
        },
    })
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    const WHAT: &str = "certificate";
    let text = read_file(WHAT, path)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| bad_pem(WHAT, path, error))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    const WHAT: &str = "private key";
    let text = read_file(WHAT, path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => bad_pem(WHAT, path, other),
    })
}

fn read_file(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TlsError::Missing {
            what,
            path: path.to_owned(),
        },
        _ => TlsError::Unreadable {
            what,
            path: path.to_owned(),
            source,
        },
    })
}

fn bad_pem(what: &'static str, path: &Path, error: pem::Error) -> TlsError {
    TlsError::BadPem {
        what,
        path: path.to_owned(),
        detail: error.to_string(),
    }
}

/// Accepts TCP connections until the `TlsListener` (the receiver of `accepted`) is
/// dropped, handing each to its own handshake task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    accepted: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (tcp, peer, permit) = tokio::select! {
            () = accepted.closed() => return,
            next = accept_tcp(&listener, &handshakes) => next,
        };
        let handshake = handshake(acceptor.clone(), tcp, peer, permit);
        let accepted = accepted.clone();
        tokio::spawn(async move {
            if let Some(stream) = handshake.await {
                // A send error means the listener is gone; the stream just closes.
                let _ = accepted.send((stream, peer)).await;
            }
        });
    }
}

/// The next TCP connection, with a permit for its handshake.
async fn accept_tcp(
    listener: &TcpListener,
    handshakes: &Arc<Semaphore>,
) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
    let permit = Arc::clone(handshakes)
        .acquire_owned()
        .await
        .expect("the handshake semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => return (tcp, peer, permit),
            Err(error) => handle_accept_error(error).await,
        }
    }
}

/// Runs one handshake; failures are the client's business, so they are logged at debug.
async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
) -> Option<TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed; dropping the connection");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, timeout = ?HANDSHAKE_TIMEOUT, "TLS handshake timed out; dropping the connection");
            None
        }
    }
}

/// Per-connection errors (reset before accept) are skipped; anything else, such as
/// running out of file descriptors, is logged and retried after a pause, as axum does for
/// its own `TcpListener`, instead of spinning.
async fn handle_accept_error(error: io::Error) {
    let per_connection = matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    );
    if per_connection {
        return;
    }
    tracing::warn!(%error, "cannot accept a TCP connection; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
