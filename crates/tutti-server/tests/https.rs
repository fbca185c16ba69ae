//! Built-in HTTPS end to end: a real axum router served over `tls::TlsListener` on
//! `127.0.0.1:0` with certificates from a real `pki::LocalPki` in a temp dir, called by
//! reqwest over real sockets.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tutti_server::pki::{IssuedCert, LocalPki};
use tutti_server::tls::{TlsError, TlsFiles, TlsListener, TlsReloader, check_files};

/// Longer than any healthy local request, shorter than the server's 10 s handshake
/// timeout: a request that waits for a stalled handshake to time out fails this bound.
const REQUEST_BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_client_that_trusts_the_ca_gets_an_answer_and_the_handler_sees_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issued) = local_ca(&dir.path().join("ca1"));
    let server = TestHttps::start(issued.tls_files()).await;

    let peer = get_ok(&trusting(&pki), &server).await;

    let peer: SocketAddr = peer
        .parse()
        .expect("the handler answers with the peer address");
    assert!(peer.ip().is_loopback(), "peer {peer}");
    assert_ne!(
        peer.port(),
        server.addr.port(),
        "the peer is the client, not the server"
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_with_a_certificate_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_, issued) = local_ca(&dir.path().join("ca1"));
    let (other_ca, _) = local_ca(&dir.path().join("ca2"));
    let server = TestHttps::start(issued.tls_files()).await;

    let error = fetch(&trusting(&other_ca), &server).await.unwrap_err();

    assert_certificate_error(&error);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issued) = local_ca(&dir.path().join("ca1"));
    let server = TestHttps::start(issued.tls_files()).await;

    let plain = reqwest::Client::new()
        .get(format!("http://{}/", server.addr))
        .send()
        .await;

    assert!(plain.is_err(), "plain HTTP got an answer: {plain:?}");
    get_ok(&trusting(&pki), &server).await;
}

/// Handshakes run in their own tasks: clients that connect and send nothing must not hold
/// up a client that completes its handshake.
#[tokio::test]
async fn stalled_clients_do_not_block_another_clients_request() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issued) = local_ca(&dir.path().join("ca1"));
    let server = TestHttps::start(issued.tls_files()).await;
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(TcpStream::connect(server.addr).await.unwrap());
    }

    let answer = tokio::time::timeout(REQUEST_BOUND, get_ok(&trusting(&pki), &server)).await;

    assert!(
        answer.is_ok(),
        "the request waited behind stalled handshakes"
    );
    drop(stalled);
}

#[tokio::test]
async fn reload_serves_a_new_certificate_to_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, issued) = local_ca(&dir.path().join("ca1"));
    let (ca2, _) = local_ca(&dir.path().join("ca2"));
    let server = TestHttps::start(issued.tls_files()).await;
    get_ok(&trusting(&ca1), &server).await;
    assert_certificate_error(&fetch(&trusting(&ca2), &server).await.unwrap_err());

    let reissued = ca2.issue("server", &local_hosts()).unwrap();
    copy_cert(&reissued, &issued);
    server
        .reloader
        .reload()
        .expect("reload the certificate from CA 2");

    get_ok(&trusting(&ca2), &server).await;
    assert_certificate_error(&fetch(&trusting(&ca1), &server).await.unwrap_err());
}

#[tokio::test]
async fn a_failed_reload_names_the_file_and_keeps_the_old_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issued) = local_ca(&dir.path().join("ca1"));
    let server = TestHttps::start(issued.tls_files()).await;

    std::fs::write(&issued.key_file, "not a key\n").unwrap();
    let error = server.reloader.reload().unwrap_err();

    assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
    assert_names(&error, &issued.key_file);
    get_ok(&trusting(&pki), &server).await;
}

#[test]
fn check_files_names_the_file_that_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issued) = local_ca(&dir.path().join("ca1"));
    let other = pki.issue("other", &local_hosts()).unwrap();
    let missing = dir.path().join("missing.pem");
    check_ok(&issued.tls_files());
    check(
        &TlsFiles {
            cert_file: missing.clone(),
            key_file: issued.key_file.clone(),
        },
        |error| matches!(error, TlsError::Missing { .. }),
        &missing,
    );
    check(
        &TlsFiles {
            cert_file: issued.cert_file.clone(),
            key_file: issued.cert_file.clone(),
        },
        |error| matches!(error, TlsError::NoPrivateKey { .. }),
        &issued.cert_file,
    );
    check(
        &TlsFiles {
            cert_file: issued.key_file.clone(),
            key_file: issued.key_file.clone(),
        },
        |error| matches!(error, TlsError::NoCertificate { .. }),
        &issued.key_file,
    );
    check(
        &TlsFiles {
            cert_file: issued.cert_file.clone(),
            key_file: other.key_file.clone(),
        },
        |error| matches!(error, TlsError::KeyMismatch { .. }),
        &other.key_file,
    );
}

#[test]
fn the_local_ca_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalPki::load_or_create(dir.path()).unwrap();
    let issued = first.issue("server", &local_hosts()).unwrap();

    let second = LocalPki::load_or_create(dir.path()).unwrap();

    assert_eq!(first.ca_pem().unwrap(), second.ca_pem().unwrap());
    for key_file in [&second.ca_key, &issued.key_file] {
        let mode = std::fs::metadata(key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key_file.display());
    }
}

#[test]
fn reissuing_overwrites_the_certificate_and_keeps_the_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, issued) = local_ca(dir.path());
    let first = std::fs::read(&issued.cert_file).unwrap();
    std::fs::set_permissions(&issued.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let reissued = pki.issue("server", &local_hosts()).unwrap();

    assert_eq!(reissued, issued);
    assert_ne!(std::fs::read(&reissued.cert_file).unwrap(), first);
    let mode = std::fs::metadata(&reissued.key_file)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    check_ok(&reissued.tls_files());
}

#[test]
fn issue_refuses_names_that_leave_the_directory_or_replace_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, _) = local_ca(dir.path());
    for name in ["", "../server", "a/b", ".hidden", "ca"] {
        let issued = pki.issue(name, &local_hosts());
        assert!(issued.is_err(), "issued a certificate named {name:?}");
    }
    assert!(
        pki.issue("server", &[]).is_err(),
        "issued a certificate for no host"
    );
}

/// An HTTPS server on `127.0.0.1:0` whose one route answers with the peer address; it
/// shuts down when dropped.
struct TestHttps {
    addr: SocketAddr,
    reloader: TlsReloader,
    _shutdown: oneshot::Sender<()>,
}

impl TestHttps {
    async fn start(files: TlsFiles) -> TestHttps {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (listener, reloader) = TlsListener::new(tcp, files).unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let router = Router::new().route("/", get(peer_address));
        let serve = axum::serve(
            listener.with_connect_info(),
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        tokio::spawn(async move { serve.await.unwrap() });
        TestHttps {
            addr,
            reloader,
            _shutdown: shutdown,
        }
    }
}

async fn peer_address(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    peer.to_string()
}

fn local_hosts() -> Vec<String> {
    vec!["127.0.0.1".to_owned(), "localhost".to_owned()]
}

/// A new CA in `dir` and a server certificate from it.
fn local_ca(dir: &Path) -> (LocalPki, IssuedCert) {
    let pki = LocalPki::load_or_create(dir).unwrap();
    let issued = pki.issue("server", &local_hosts()).unwrap();
    (pki, issued)
}

/// A fresh client (so a fresh connection) that trusts only `pki`'s CA.
fn trusting(pki: &LocalPki) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca_pem().unwrap().as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .build()
        .unwrap()
}

async fn fetch(client: &reqwest::Client, server: &TestHttps) -> reqwest::Result<String> {
    let url = format!("https://localhost:{}/", server.addr.port());
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

async fn get_ok(client: &reqwest::Client, server: &TestHttps) -> String {
    fetch(client, server).await.expect("an HTTPS answer")
}

fn copy_cert(from: &IssuedCert, to: &IssuedCert) {
    std::fs::copy(&from.cert_file, &to.cert_file).unwrap();
    std::fs::copy(&from.key_file, &to.key_file).unwrap();
}

fn assert_certificate_error(error: &reqwest::Error) {
    let chain = tutti_bus::error::with_causes(error);
    assert!(
        chain.to_lowercase().contains("certificate"),
        "not a certificate error: {chain}"
    );
}

fn check_ok(files: &TlsFiles) {
    check_files(files).expect("valid certificate and key");
}

fn check(files: &TlsFiles, expected: fn(&TlsError) -> bool, names: &Path) {
    let error = check_files(files).unwrap_err();
    assert!(expected(&error), "unexpected error: {error:?}");
    assert_names(&error, names);
}

fn assert_names(error: &TlsError, path: &Path) {
    let message = error.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} does not name {}",
        path.display()
    );
}
