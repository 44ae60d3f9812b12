use std::fs;

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn headers_from(pairs: impl IntoIterator<Item = (String, String)>) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    map
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

/// The timestamp a vector was signed at, so the verifier's clock can be pinned to it.
fn vector_time(v: &Value) -> i64 {
    let h = &v["headers"];
    for key in ["webhook-timestamp", "X-Slack-Request-Timestamp"] {
        if let Some(ts) = h[key].as_str() {
            return ts.parse().unwrap();
        }
    }
    if let Some(sig) = h["Stripe-Signature"].as_str() {
        return parse_stripe_header(sig).unwrap().t;
    }
    1_700_000_000
}

fn source_of(scheme: &str) -> Source {
    let head = scheme.split_whitespace().next().unwrap();
    match head {
        "github" => Source::Github,
        "standard-webhooks" => Source::Standard,
        "slack" => Source::Slack,
        "stripe" => Source::Stripe,
        other => panic!("vector scheme {other} has no source"),
    }
}

#[test]
fn shared_signature_vectors() {
    let Some(dir) = chorus_testkit::fixtures_dir() else { return };
    let mut checked = 0;
    for entry in fs::read_dir(dir.join("vectors")).unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let (Some(secret), Some(body)) = (v["secret"].as_str(), v["body"].as_str()) else {
            continue; // header-parse-only vectors are checked below
        };
        let source = source_of(v["scheme"].as_str().unwrap());
        let headers = headers_from(
            v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())),
        );
        let now = at(vector_time(&v));
        let result = verify(source, None, &[Secret::new(secret)], &headers, body.as_bytes(), now);
        let expected = v["expected_valid"].as_bool().unwrap();
        assert_eq!(result.is_ok(), expected, "{}: {result:?}", path.display());
        if expected && matches!(source, Source::Stripe | Source::Slack | Source::Standard) {
            let stale = verify(
                source,
                None,
                &[Secret::new(secret)],
                &headers,
                body.as_bytes(),
                at(vector_time(&v) + 400),
            );
            assert_eq!(stale, Err(VerifyError::TimestampOutOfTolerance), "{}", path.display());
        }
        // Our signer must reproduce every correct signature.
        if let Some(exp) = v["expected"].as_str() {
            let ours = match source {
                Source::Github => sign_body_hex(&Secret::new(secret), body.as_bytes()),
                Source::Standard => sign_standard(
                    &Secret::new(secret),
                    v["headers"]["webhook-id"].as_str().unwrap(),
                    vector_time(&v),
                    body.as_bytes(),
                )
                .unwrap(),
                Source::Slack => {
                    sign(source, None, &Secret::new(secret), body.as_bytes(), now, "")[1].1.clone()
                }
                Source::Stripe => {
                    let h = &sign(source, None, &Secret::new(secret), body.as_bytes(), now, "")[0].1;
                    parse_stripe_header(h).unwrap().v1[0].clone()
                }
                _ => unreachable!(),
            };
            if v["expected_valid"] == Value::Bool(true)
                || v["notes"].as_str().unwrap_or("").contains("would produce")
            {
                assert_eq!(ours, exp, "{}", path.display());
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} vectors checked");
}

#[test]
fn stripe_header_parse_vector() {
    let Some(dir) = chorus_testkit::fixtures_dir() else { return };
    let v: Value =
        serde_json::from_slice(&fs::read(dir.join("vectors/stripe.header-parse-only.json")).unwrap())
            .unwrap();
    let parsed = parse_stripe_header(v["headers"]["Stripe-Signature"].as_str().unwrap()).unwrap();
    assert_eq!(parsed.t, v["expected"]["t"].as_i64().unwrap());
    assert_eq!(parsed.v1, vec![v["expected"]["v1"][0].as_str().unwrap().to_owned()]);
    assert_eq!(parsed.v0, vec![v["expected"]["v0"][0].as_str().unwrap().to_owned()]);
}

#[test]
fn missing_headers_are_401_class() {
    let empty = HeaderMap::new();
    for source in Source::ALL.into_iter().filter(|s| s.has_secret()) {
        let err = verify(source, None, &[Secret::new("s")], &empty, b"{}", at(1_700_000_000)).unwrap_err();
        assert!(err.is_missing(), "{source}: {err:?}");
    }
}

#[test]
fn none_accepts_anything_and_docker_nothing() {
    assert!(verify(Source::None, None, &[], &HeaderMap::new(), b"x", at(0)).is_ok());
    assert_eq!(
        verify(Source::Docker, None, &[], &HeaderMap::new(), b"x", at(0)),
        Err(VerifyError::NoRequests)
    );
}

#[test]
fn rotation_both_secrets_verify() {
    let old = Secret::new("old");
    let new = Secret::new("new");
    let now = at(1_700_000_000);
    for source in Source::ALL.into_iter().filter(|s| s.has_secret() && *s != Source::Standard) {
        let h = headers_from(sign(source, None, &old, b"{\"a\":1}", now, "m"));
        assert!(verify(source, None, &[new.clone(), old.clone()], &h, b"{\"a\":1}", now).is_ok(), "{source}");
        assert!(verify(source, None, std::slice::from_ref(&new), &h, b"{\"a\":1}", now).is_err(), "{source}");
    }
}

#[test]
fn generic_base64_with_custom_header_and_prefix() {
    let scheme = GenericScheme {
        header: "X-Acme-Sig".into(),
        encoding: SignatureEncoding::Base64,
        prefix: Some("hmac ".into()),
    };
    let s = Secret::new("k");
    let now = at(0);
    let h = headers_from(sign(Source::Generic, Some(&scheme), &s, b"body", now, ""));
    assert!(h.get("x-acme-sig").unwrap().to_str().unwrap().starts_with("hmac "));
    assert!(verify(Source::Generic, Some(&scheme), std::slice::from_ref(&s), &h, b"body", now).is_ok());
    assert_eq!(
        verify(Source::Generic, Some(&scheme), &[s], &h, b"bodz", now),
        Err(VerifyError::InvalidSignature)
    );
}

#[test]
fn gitlab_token_must_match_exactly() {
    let s = Secret::new("tok");
    let ok = headers_from([("X-Gitlab-Token".to_owned(), "tok".to_owned())]);
    let bad = headers_from([("X-Gitlab-Token".to_owned(), "tok2".to_owned())]);
    assert!(verify(Source::Gitlab, None, std::slice::from_ref(&s), &ok, b"{}", at(0)).is_ok());
    assert_eq!(verify(Source::Gitlab, None, &[s], &bad, b"{}", at(0)), Err(VerifyError::InvalidSignature));
}

#[test]
fn future_timestamps_are_rejected_too() {
    let s = Secret::generate_standard();
    let h = headers_from(sign(Source::Standard, None, &s, b"{}", at(2_000), "msg"));
    assert!(verify(Source::Standard, None, std::slice::from_ref(&s), &h, b"{}", at(2_000 - 299)).is_ok());
    assert_eq!(
        verify(Source::Standard, None, &[s], &h, b"{}", at(2_000 - 301)),
        Err(VerifyError::TimestampOutOfTolerance)
    );
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(body in proptest::collection::vec(any::<u8>(), 0..512), secs in 1_000_000i64..4_000_000_000) {
        let now = at(secs);
        // A docker hook takes no requests: nothing it could sign verifies.
        for source in Source::ALL.into_iter().filter(|s| s.takes_requests()) {
            let secret = if source == Source::Standard { Secret::generate_standard() } else { Secret::generate() };
            let h = headers_from(sign(source, None, &secret, &body, now, "msg_x"));
            prop_assert!(verify(source, None, std::slice::from_ref(&secret), &h, &body, now).is_ok());
            if source.has_secret() && source != Source::Gitlab {
                let mut tampered = body.clone();
                tampered.push(b'!');
                prop_assert_eq!(verify(source, None, &[secret], &h, &tampered, now), Err(VerifyError::InvalidSignature));
            }
        }
    }
}

/// Sentry, CircleCI, Bitbucket and Gitea/Forgejo, each as its
/// documentation describes the scheme (HMAC-SHA256 of the raw body, in its
/// header and encoding). The expected values were computed with Python's
/// `hmac` module, not with this crate.
#[test]
fn documented_schemes_of_the_newer_sources() {
    struct Vector {
        source: Source,
        secret: &'static str,
        body: &'static str,
        header: &'static str,
        value: &'static str,
    }
    let vectors = [
        Vector {
            source: Source::Sentry,
            secret: "e27b4d0fe1bb4c3e8c0f8d1c9b7a6f5e",
            body: r#"{"action":"resolved","data":{"issue":{"id":"42"}}}"#,
            header: "Sentry-Hook-Signature",
            value: "047c9c2abb69b21cf6c699bc24471790aa00e66cec45cb5a648160d68b8cff46",
        },
        Vector {
            source: Source::Circleci,
            secret: "circle-secret-123",
            body: r#"{"type":"workflow-completed","id":"abc"}"#,
            header: "circleci-signature",
            value: "v1=51d86df21a8baab00c54e488b0eaedfa02b01b747bd4caca1198355a92fe0c83",
        },
        Vector {
            source: Source::Circleci,
            secret: "circle-secret-123",
            body: r#"{"type":"workflow-completed","id":"abc"}"#,
            header: "circleci-signature",
            // Versions CircleCI may add beside v1 are skipped.
            value: "v2=ffff,v1=51d86df21a8baab00c54e488b0eaedfa02b01b747bd4caca1198355a92fe0c83",
        },
        Vector {
            source: Source::Bitbucket,
            secret: "bb-secret-0987654321",
            body: r#"{"push":{"changes":[]}}"#,
            header: "X-Hub-Signature",
            value: "sha256=946c3ec7c08a4ac626064ac82e9ab88b7c11ce412e247058f0aa234abea0b672",
        },
        Vector {
            source: Source::Gitea,
            secret: "gitea-secret-abcdef",
            body: r#"{"ref":"refs/heads/main"}"#,
            header: "X-Gitea-Signature",
            value: "2150cc20bfdc1eca823f6a8d341c94a7e12bf866a3a42e9db32d2cff6e730812",
        },
        Vector {
            source: Source::Gitea,
            secret: "gitea-secret-abcdef",
            body: r#"{"ref":"refs/heads/main"}"#,
            header: "X-Forgejo-Signature",
            value: "2150cc20bfdc1eca823f6a8d341c94a7e12bf866a3a42e9db32d2cff6e730812",
        },
    ];
    let now = at(1_700_000_000);
    for v in vectors {
        let secret = [Secret::new(v.secret)];
        let good = headers_from([(v.header.to_owned(), v.value.to_owned())]);
        assert_eq!(verify(v.source, None, &secret, &good, v.body.as_bytes(), now), Ok(()), "{}", v.source);
        // The same body signed by this crate carries the same value.
        let signed = headers_from(sign(v.source, None, &secret[0], v.body.as_bytes(), now, "m"));
        assert_eq!(verify(v.source, None, &secret, &signed, v.body.as_bytes(), now), Ok(()), "{}", v.source);
        let tampered = format!("{} ", v.body);
        assert_eq!(
            verify(v.source, None, &secret, &good, tampered.as_bytes(), now),
            Err(VerifyError::InvalidSignature),
            "{}",
            v.source
        );
        let other = [Secret::new("another-secret-entirely")];
        assert_eq!(
            verify(v.source, None, &other, &good, v.body.as_bytes(), now),
            Err(VerifyError::InvalidSignature)
        );
        let missing = verify(v.source, None, &secret, &HeaderMap::new(), v.body.as_bytes(), now).unwrap_err();
        assert!(missing.is_missing(), "{}: {missing:?}", v.source);
    }
}

/// Standard Webhooks `v1a`: Ed25519 with `whsk_` (signs) and `whpk_`
/// (verifies) keys, beside `v1` HMAC entries in the same header.
#[test]
fn standard_v1a_signs_with_the_secret_key_and_verifies_with_the_public_one() {
    let signing = Secret::new(format!("whsk_{}", B64.encode([7u8; 32])));
    let public = Secret::new(standard_public_key(&signing).unwrap());
    assert!(public.expose().starts_with("whpk_"));
    assert_eq!(standard_public_key(&public).as_deref(), Some(public.expose()));
    assert_eq!(standard_public_key(&Secret::new("whsec_c2VjcmV0")), None);
    let now = at(1_700_000_000);
    let body = br#"{"type":"invoice.paid"}"#;
    let signed = sign(Source::Standard, None, &signing, body, now, "msg_1");
    let sig = &signed.iter().find(|(k, _)| k == headers::STANDARD_SIGNATURE).unwrap().1;
    assert!(sig.starts_with("v1a,"), "{sig}");
    let request = headers_from(signed.clone());
    assert_eq!(verify(Source::Standard, None, std::slice::from_ref(&public), &request, body, now), Ok(()));
    assert_eq!(verify(Source::Standard, None, std::slice::from_ref(&signing), &request, body, now), Ok(()));
    assert_eq!(
        verify(Source::Standard, None, std::slice::from_ref(&public), &request, b"{}", now),
        Err(VerifyError::InvalidSignature)
    );
    // A public key cannot sign, and does not take an HMAC entry.
    assert_eq!(sign_standard(&public, "msg_1", 0, body), Err(VerifyError::BadSecret));
    let hmac_secret = Secret::new(format!("whsec_{}", B64.encode(b"an hmac key")));
    let hmac_signed = headers_from(sign(Source::Standard, None, &hmac_secret, body, now, "msg_1"));
    assert_eq!(
        verify(Source::Standard, None, std::slice::from_ref(&public), &hmac_signed, body, now),
        Err(VerifyError::InvalidSignature)
    );
    // During a move from HMAC to Ed25519 both entries ride in one header.
    let both = format!("{} {sig}", hmac_signed.get(headers::STANDARD_SIGNATURE).unwrap().to_str().unwrap());
    let mixed: Vec<(String, String)> = signed
        .into_iter()
        .map(|(k, v)| if k == headers::STANDARD_SIGNATURE { (k, both.clone()) } else { (k, v) })
        .collect();
    let mixed = headers_from(mixed);
    assert_eq!(verify(Source::Standard, None, std::slice::from_ref(&public), &mixed, body, now), Ok(()));
    assert_eq!(verify(Source::Standard, None, &[hmac_secret], &mixed, body, now), Ok(()));
    for bad in ["whsk_c2hvcnQ=", "whpk_bm90IGEga2V5", "whsk_!!"] {
        let err = verify(Source::Standard, None, &[Secret::new(bad)], &mixed, body, now).unwrap_err();
        assert_eq!(err, VerifyError::BadSecret, "{bad}");
    }
}

/// Svix signs exactly as Standard Webhooks `v1`, under `svix-*` names.
#[test]
fn svix_header_names_verify_as_standard_webhooks() {
    let secret = Secret::new(format!("whsec_{}", B64.encode(b"svix shared secret")));
    let now = at(1_700_000_000);
    let body = br#"{"event":"user.created"}"#;
    let renamed: Vec<(String, String)> = sign(Source::Standard, None, &secret, body, now, "msg_svix")
        .into_iter()
        .map(|(k, v)| (k.replace("webhook-", "svix-"), v))
        .collect();
    assert!(renamed.iter().any(|(k, _)| k == "svix-signature"));
    let request = headers_from(renamed);
    assert_eq!(verify(Source::Standard, None, std::slice::from_ref(&secret), &request, body, now), Ok(()));
    let late = at(1_700_000_000 + 400);
    assert_eq!(
        verify(Source::Standard, None, std::slice::from_ref(&secret), &request, body, late),
        Err(VerifyError::TimestampOutOfTolerance)
    );
    let missing = verify(Source::Standard, None, &[secret], &HeaderMap::new(), body, now).unwrap_err();
    assert!(missing.is_missing());
}
