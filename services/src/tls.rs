//! TLS for the HTTP API and the Postgres wire endpoint, and the rule that
//! keeps personal data off the network in clear: an address other machines
//! can reach is served only with TLS, unless the operator says a proxy or
//! a private network does that job (`--insecure-listen`).

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS acceptor for the certificate chain and PKCS#8 key in these PEM
/// files. The Postgres wire endpoint reads the same files the same way, so
/// a file this accepts, it accepts too (and one this refuses stops the
/// server before that endpoint could fall back to no encryption).
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let open = |path: &Path| {
        File::open(path)
            .map(BufReader::new)
            .with_context(|| format!("cannot read {}", path.display()))
    };
    let chain = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<CertificateDer>, _>>()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no PEM certificate", cert.display());
    let key = rustls_pemfile::pkcs8_private_keys(&mut open(key)?)
        .next()
        .transpose()
        .with_context(|| format!("cannot read {}", key.display()))?
        .with_context(|| format!("{} holds no PKCS#8 private key (BEGIN PRIVATE KEY)", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::from(key))
        .context("the certificate and key do not make a TLS configuration")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Refuses to serve `what` in clear on an address other machines reach.
pub fn check_listen(what: &str, address: SocketAddr, tls: bool, insecure: bool) -> anyhow::Result<()> {
    if tls || insecure || address.ip().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "{what} on {address} would carry personal data unencrypted: give --tls-cert and --tls-key, \
         or --insecure-listen when a TLS proxy or a private network protects it"
    )
}
