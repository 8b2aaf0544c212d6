//! OIDC bearer JWTs, with a key pair and JWKS made in the test: a valid
//! token signs in over HTTP and the Postgres wire with the grants of its
//! claims; every forged, expired, misdirected or unsigned one is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rand::RngCore;
use reqwest::StatusCode;
use serde_json::{Value, json};
use utfall_tests::{Cli, Pg, Store, client_with, fixture, free_port, wait_for};

const ISSUER: &str = "https://idp.nav.example";
const AUDIENCE: &str = "utfall";

/// An Ed25519 key: its PKCS#8 DER (what jsonwebtoken signs with) and its
/// public half (what the JWKS holds).
fn key_pair() -> (Vec<u8>, [u8; 32]) {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    // RFC 8410: PrivateKeyInfo for Ed25519 is this fixed prefix and the seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend_from_slice(&seed);
    (der, public)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(grants: &[&str]) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now(), "nbf": now() - 10,
           "exp": now() + 600, "utfall_grants": grants})
}

fn sign(der: &[u8], kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_ed_der(der)).expect("sign")
}

#[tokio::test]
async fn valid_jwts_sign_in_and_every_forged_one_is_refused() {
    let (der, public) = key_pair();
    let (other_der, _) = key_pair();
    let jwks = tempfile::NamedTempFile::new().expect("file");
    let x = URL_SAFE_NO_PAD.encode(public);
    let set = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "alg": "EdDSA", "use": "sig", "x": x}]});
    std::fs::write(jwks.path(), set.to_string()).expect("JWKS");

    let cli = Cli::new(Store::embedded());
    cli.import(&fixture("optimist"));
    cli.import(&fixture("sja-meg"));
    let port = free_port();
    let jwks_path = jwks.path().display().to_string();
    let server = cli.serve(&[
        "--pg",
        &format!("127.0.0.1:{port}"),
        "--oidc-issuer",
        ISSUER,
        "--oidc-audience",
        AUDIENCE,
        "--oidc-jwks",
        &jwks_path,
    ]);
    wait_for(
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "the Postgres endpoint",
    );
    server.caught_up().await;
    let summary = |jwt: String| {
        let request = client_with(&jwt).get(server.url("/v1/programs/optimist/summary"));
        async move { request.send().await.expect("GET").status() }
    };

    // A valid token with a viewer grant sees OPTIMIST's summary, not SJÅ MEG's.
    let viewer = sign(&der, "k1", &claims(&["viewer:optimist"]));
    assert_eq!(summary(viewer.clone()).await, StatusCode::OK);
    let other = client_with(&viewer)
        .get(server.url("/v1/programs/sja-meg/summary"))
        .send()
        .await
        .expect("GET");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // Forged, expired, misdirected, unsigned: each is refused with 401.
    let mut expired = claims(&["viewer:optimist"]);
    expired["exp"] = json!(now() - 3600);
    let mut early = claims(&["viewer:optimist"]);
    early["nbf"] = json!(now() + 3600);
    let mut issuer = claims(&["viewer:optimist"]);
    issuer["iss"] = json!("https://evil.example");
    let mut audience = claims(&["viewer:optimist"]);
    audience["aud"] = json!("another-app");
    let mut bad_grant = claims(&["viewer:optimist"]);
    bad_grant["utfall_grants"] = json!(["superuser"]);
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims(&["admin"]).to_string())
    );
    // The public key used as an HMAC secret (key confusion).
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = encode(&hs, &claims(&["admin"]), &EncodingKey::from_secret(&public)).expect("sign");
    let mut tampered = viewer.clone();
    tampered.insert(tampered.find('.').expect("a JWT") + 5, 'x');
    let refused = [
        ("another key", sign(&other_der, "k1", &claims(&["admin"]))),
        ("an unknown key id", sign(&der, "k9", &claims(&["admin"]))),
        ("expired", sign(&der, "k1", &expired)),
        ("not yet valid", sign(&der, "k1", &early)),
        ("another issuer", sign(&der, "k1", &issuer)),
        ("another audience", sign(&der, "k1", &audience)),
        ("a malformed grant", sign(&der, "k1", &bad_grant)),
        ("alg none", unsigned),
        ("HS256 with the public key", confused),
        ("a tampered payload", tampered),
        ("garbage", "a.b.c".to_string()),
    ];
    for (what, jwt) in refused {
        assert_eq!(summary(jwt).await, StatusCode::UNAUTHORIZED, "{what}");
    }

    // An evaluator's JWT is a password on the Postgres wire (user = the principal).
    let evaluator = sign(&der, "k1", &claims(&["evaluator:optimist"]));
    let psql = std::env::var("UTFALL_TEST_PSQL").unwrap_or_else(|_| "psql".into());
    let pg = Pg {
        port,
        user: "oidc:alice".into(),
        password: evaluator,
    };
    let out = pg
        .command(&psql)
        .args(["-X", "-A", "-t", "-c", "SELECT DISTINCT program FROM participants"])
        .output()
        .expect("psql");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "optimist");
    let expired_pg = pg.as_user("oidc:alice", &sign(&der, "k1", &expired));
    let out = expired_pg
        .command(&psql)
        .args(["-X", "-c", "SELECT 1"])
        .output()
        .expect("psql");
    assert!(!out.status.success(), "an expired JWT signed in");

    // Every refusal is audited under no principal, and no JWT is in the log.
    let records: Value = server.get("/v1/audit?limit=1000").await.json().await.expect("JSON");
    let records = records.as_array().expect("records");
    assert!(records.iter().filter(|r| r["action"] == "sign_in_failed").count() >= 12);
    assert!(
        records
            .iter()
            .any(|r| r["principal"] == "oidc:alice" && r["action"] == "sql")
    );
    let text = serde_json::to_string(records).expect("JSON");
    assert!(!text.contains(&viewer[..40]), "a JWT is in the audit log");
}
