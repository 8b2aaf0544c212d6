//! TLS on HTTP and the Postgres wire with a certificate made in the test,
//! and the rule that keeps an address other machines reach from serving
//! personal data in clear.

use reqwest::StatusCode;
use utfall_tests::{Cli, Pg, Store, free_port, run_utfall, utfall_bin, wait_for};

/// A self-signed certificate for localhost: (folder, cert.pem, key.pem).
fn certificate() -> (tempfile::TempDir, String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = tempfile::tempdir().expect("directory");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).expect("cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
    let path = |p: std::path::PathBuf| p.display().to_string();
    (dir, path(cert), path(key))
}

#[tokio::test]
async fn http_and_postgres_wire_speak_tls_and_refuse_clear_text() {
    let (_dir, cert, key) = certificate();
    let cli = Cli::new(Store::embedded());
    let port = free_port();
    let server = cli.serve(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--pg",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    wait_for(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the Postgres endpoint",
    );

    let trusted = reqwest::Certificate::from_pem(&std::fs::read(&cert).expect("cert")).expect("PEM");
    let client = reqwest::Client::builder()
        .add_root_certificate(trusted)
        .build()
        .expect("client");
    let https = server.base.replace("127.0.0.1", "localhost");
    let answer = client
        .get(format!("{https}/v1/programs"))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(answer.status(), StatusCode::OK);
    // Clear text to the TLS port gets no answer; an untrusting client none either.
    let clear = reqwest::get(server.base.replace("https://", "http://") + "/healthz").await;
    assert!(clear.is_err() || clear.is_ok_and(|r| !r.status().is_success()));
    assert!(
        reqwest::get(format!("{https}/healthz")).await.is_err(),
        "an unknown certificate was trusted"
    );

    let psql = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    let pg = Pg::admin(&server, port);
    let verified = pg
        .command(&psql)
        .env("PGHOST", "localhost")
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &cert)
        .args(["-X", "-A", "-t", "-c", "SELECT 1"])
        .output()
        .expect("psql");
    // verify-full connects only over TLS, to a server proving it is localhost.
    let stdout = String::from_utf8_lossy(&verified.stdout);
    let stderr = String::from_utf8_lossy(&verified.stderr);
    assert_eq!(stdout.trim(), "1", "psql over TLS: {stderr}");
    let clear = pg
        .command(&psql)
        .env("PGSSLMODE", "disable")
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .expect("psql");
    assert!(!clear.status.success(), "a connection without TLS was served");
    assert!(String::from_utf8_lossy(&clear.stderr).contains("TLS only"));
}

#[test]
fn an_address_others_reach_needs_tls_or_an_explicit_choice() {
    let store = Store::embedded();
    let mut args = vec!["serve".to_string(), "--http".into(), "0.0.0.0:0".into()];
    args.extend(store.args());
    let refused = run_utfall(&args, None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--insecure-listen") && stderr.contains("unencrypted"),
        "{stderr}"
    );

    // A bad key file stops the server instead of serving in clear.
    let (dir, cert, _) = certificate();
    let bad_key = dir.path().join("bad.pem");
    std::fs::write(
        &bad_key,
        "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    )
    .expect("key");
    let mut args = vec!["serve".to_string(), "--http".into(), "127.0.0.1:0".into()];
    args.extend(store.args());
    args.extend([
        "--tls-cert".into(),
        cert,
        "--tls-key".into(),
        bad_key.display().to_string(),
    ]);
    let refused = run_utfall(&args, None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("PKCS#8"));

    // Given the choice, it listens on every address.
    let mut child = std::process::Command::new(utfall_bin())
        .args(["serve", "--http", "0.0.0.0:0", "--insecure-listen"])
        .args(store.args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("utfall serve");
    let stdout = child.stdout.take().expect("stdout");
    let listening = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find(|l| l.starts_with("utfall listening on "));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        listening.is_some_and(|l| l.starts_with("utfall listening on http://0.0.0.0:")),
        "no server on every address"
    );
}
