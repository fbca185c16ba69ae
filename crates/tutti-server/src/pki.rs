//! A local certificate authority for development and tests, in the spirit of mkcert.
//!
//! [`LocalPki`] keeps a CA (`ca.pem`, `ca.key`) in one directory and issues certificates
//! signed by it (`<name>.pem`, `<name>.key`) that serve HTTPS (`tls.rs`) and can double as
//! broker client certificates. `tutti up --tls` and the test harness use it; production
//! deployments bring certificates from their own CA. Keys are written mode 0600, and every
//! change to the directory happens under a lock file, so two processes sharing a directory
//! cannot end up with a key from one and a CA certificate from the other.

use std::fs::{self, File};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::tls::{self, TlsFiles};

/// The CA certificate's common name.
const CA_NAME: &str = "tutti local CA";

/// About ten years: long enough that a developer never meets an expired local CA.
const CA_VALIDITY: Duration = Duration::days(3650);

/// About a year, within what browsers accept for a leaf certificate.
const CERT_VALIDITY: Duration = Duration::days(365);

/// Certificates start an hour in the past, so a clock slightly behind ours still accepts
/// them.
const BACKDATE: Duration = Duration::hours(1);

/// A directory holding a local CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPki {
    /// The directory everything is written to.
    pub dir: PathBuf,
    /// `ca.pem`: the CA certificate clients must trust.
    pub ca_cert: PathBuf,
    /// `ca.key`: the CA's private key, mode 0600.
    pub ca_key: PathBuf,
}

/// A certificate issued by [`LocalPki::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// `<name>.pem`: the certificate.
    pub cert_file: PathBuf,
    /// `<name>.key`: its private key, mode 0600.
    pub key_file: PathBuf,
}

impl IssuedCert {
    /// The files as the TLS listener takes them.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
        }
    }
}

impl LocalPki {
    /// Uses the CA in `dir`, creating the directory and a new CA on first use.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<LocalPki> {
        create_private_dir(dir)?;
        let pki = LocalPki {
            dir: dir.to_owned(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
        };
        let _lock = pki.lock()?;
        match (pki.ca_cert.exists(), pki.ca_key.exists()) {
            (true, true) => pki.check_ca()?,
            (false, false) => pki.create_ca()?,
            (true, false) => bail!(
                "{} has no {}; remove {} to start a new CA",
                dir.display(),
                pki.ca_key.display(),
                pki.ca_cert.display()
            ),
            (false, true) => bail!(
                "{} has no {}; remove {} to start a new CA",
                dir.display(),
                pki.ca_cert.display(),
                pki.ca_key.display()
            ),
        }
        Ok(pki)
    }

    /// Issues `<name>.pem` and `<name>.key` for `hosts` (DNS names or IP addresses),
    /// replacing any earlier pair of that name. Usable for server and client auth.
    pub fn issue(&self, name: &str, hosts: &[String]) -> anyhow::Result<IssuedCert> {
        check_cert_name(name)?;
        if hosts.is_empty() {
            bail!("certificate {name:?} needs at least one host name or IP address");
        }
        let _lock = self.lock()?;
        let issuer = self.issuer()?;
        let key = KeyPair::generate().context("cannot generate a key")?;
        let cert = leaf_params(name, hosts)?
            .signed_by(&key, &issuer)
            .with_context(|| format!("cannot sign the certificate {name:?}"))?;
        let issued = IssuedCert {
            cert_file: self.dir.join(format!("{name}.pem")),
            key_file: self.dir.join(format!("{name}.key")),
        };
        write_file(&issued.key_file, &key.serialize_pem(), 0o600)?;
        write_file(&issued.cert_file, &cert.pem(), 0o644)?;
        Ok(issued)
    }

    /// The CA certificate, PEM, for clients to trust.
    pub fn ca_pem(&self) -> anyhow::Result<String> {
        fs::read_to_string(&self.ca_cert)
            .with_context(|| format!("cannot read {}", self.ca_cert.display()))
    }

    /// Reads the CA from disk each time, so a certificate issued here chains to whatever
    /// `ca.pem` clients were given.
    fn issuer(&self) -> anyhow::Result<Issuer<'static, KeyPair>> {
        let key_pem = fs::read_to_string(&self.ca_key)
            .with_context(|| format!("cannot read {}", self.ca_key.display()))?;
        let key = KeyPair::from_pem(&key_pem)
            .with_context(|| format!("{} is not a usable private key", self.ca_key.display()))?;
        let cert_pem = self.ca_pem()?;
        Issuer::from_ca_cert_pem(&cert_pem, key)
            .with_context(|| format!("{} is not a usable CA certificate", self.ca_cert.display()))
    }

    fn create_ca(&self) -> anyhow::Result<()> {
        let key = KeyPair::generate().context("cannot generate the CA key")?;
        let cert = ca_params()
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        write_file(&self.ca_key, &key.serialize_pem(), 0o600)?;
        write_file(&self.ca_cert, &cert.pem(), 0o644)?;
        tracing::info!(ca_cert = %self.ca_cert.display(), "created a local CA");
        Ok(())
    }

    /// An existing CA is used as it is, but only if its key belongs to its certificate:
    /// otherwise every certificate issued from it would fail to verify.
    fn check_ca(&self) -> anyhow::Result<()> {
        let files = TlsFiles {
            cert_file: self.ca_cert.clone(),
            key_file: self.ca_key.clone(),
        };
        tls::check_files(&files).context("the local CA cannot be used")
    }

    /// Holds an exclusive lock on `<dir>/pki.lock` until dropped.
    fn lock(&self) -> anyhow::Result<File> {
        let path = self.dir.join("pki.lock");
        let file = File::create(&path)
            .with_context(|| format!("cannot create the lock file {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(file)
    }
}

fn ca_params() -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params
}

fn leaf_params(name: &str, hosts: &[String]) -> anyhow::Result<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.subject_alt_names = hosts
        .iter()
        .map(|host| san(host))
        .collect::<anyhow::Result<_>>()?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + CERT_VALIDITY;
    Ok(params)
}

fn san(host: &str) -> anyhow::Result<SanType> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let name = host
        .to_owned()
        .try_into()
        .with_context(|| format!("{host:?} is neither a DNS name nor an IP address"))?;
    Ok(SanType::DnsName(name))
}

/// The name becomes a file name next to the CA, so it must stay in the directory and must
/// not replace the CA itself.
fn check_cert_name(name: &str) -> anyhow::Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.starts_with('.') || !name.chars().all(allowed) {
        bail!(
            "certificate name {name:?} must be letters, digits, '-', '_' or '.', not starting with '.'"
        );
    }
    if name == "ca" {
        bail!("certificate name \"ca\" is taken by the CA itself");
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Writes through a temporary file and a rename, so a reader sees the old file or the new
/// one, and a replaced key file gets `mode` whatever the old file's mode was.
fn write_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    // A leftover from a crash may have another mode; start from a fresh file.
    let _ = fs::remove_file(&temporary);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}
