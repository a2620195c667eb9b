//! Token tests: a table of claims → chain, and real tokens signed in the test with RSA, P-256 and
//! Ed25519 keys generated here, checked against a JWKS built from their public halves.

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{EncodingKey, Header as JwtHeader};
use rcgen::KeyPair;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::Generate;
use serde_json::json;

use super::*;

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "https://mcp.example.com/mcp/github";
const NOW: u64 = 1_800_000_000;

/// The test issuer's signing keys and the JWKS that publishes them.
struct TestKeys {
    rsa: EncodingKey,
    rsa_modulus: Vec<u8>,
    ec: EncodingKey,
    ed: EncodingKey,
    /// A P-256 key that is not in the JWKS.
    stranger: EncodingKey,
    jwks: String,
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL.encode(bytes)
}

fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa_private = rsa::PrivateKey::generate();
        let rsa_der = rsa_private.to_pkcs1_der().expect("the RSA key encodes as PKCS#1");
        let rsa = EncodingKey::from_rsa_der(rsa_der.as_bytes());
        let mut rsa_jwk = serde_json::to_value(Jwk::from_encoding_key(&rsa, Algorithm::RS256).expect("an RSA JWK"))
            .expect("a JWK serializes");
        rsa_jwk["kid"] = json!("rsa-1");
        rsa_jwk["use"] = json!("sig");
        let rsa_modulus = BASE64URL.decode(rsa_jwk["n"].as_str().expect("n")).expect("n is base64url");
        let ec_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let point = ec_pair.public_key_raw();
        let ed_pair = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
        let stranger_pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a P-256 key");
        let jwks = json!({"keys": [
            rsa_jwk,
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "x": b64(ed_pair.public_key_raw())},
            // Never a verification key: an HMAC secret, and an encryption key.
            {"kty": "oct", "kid": "hmac-1", "k": b64(b"shared secret")},
            {"kty": "EC", "crv": "P-256", "kid": "enc-1", "use": "enc", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
        ]});
        TestKeys {
            rsa,
            rsa_modulus,
            ec: EncodingKey::from_ec_der(&ec_pair.serialize_der()),
            ed: EncodingKey::from_ed_der(&ed_pair.serialize_der()),
            stranger: EncodingKey::from_ec_der(&stranger_pair.serialize_der()),
            jwks: jwks.to_string(),
        }
    })
}

fn verifier() -> Verifier {
    let settings = VerifierSettings { algorithms: SigningAlgorithm::ALL.to_vec(), ..VerifierSettings::new(ISSUER) };
    Verifier::new(settings, KeySet::from_jwks(keys().jwks.as_bytes()).expect("the test JWKS reads"))
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "anne", "client_id": "planner", "iat": NOW, "exp": NOW + 3600})
}

/// `claims()` with `changes` merged in (`null` removes a claim).
fn claims_with(changes: Value) -> Value {
    let mut claims = claims();
    for (key, value) in changes.as_object().expect("changes are an object") {
        match value {
            Value::Null => claims.as_object_mut().expect("an object").remove(key),
            _ => claims.as_object_mut().expect("an object").insert(key.clone(), value.clone()),
        };
    }
    claims
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = JwtHeader::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).expect("the test token signs")
}

fn rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, Some("rsa-1"), &keys().rsa, claims)
}

/// A token with a hand-written header and no valid signature.
fn unsigned(header: Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

/// One verification case: its name, the token, and the chain (as text) or the error expected.
type TokenCase = (&'static str, String, Result<Vec<String>, TokenError>);

/// One chain case: its name, the claims, and the chain or the `(claim, reason)` of the error.
type ChainCase = (&'static str, Value, Result<Vec<&'static str>, (&'static str, &'static str)>);

fn chain_text(chain: &[ObjectRef]) -> Vec<String> {
    chain.iter().map(ToString::to_string).collect()
}

#[test]
fn verifies_real_tokens_and_refuses_each_kind_of_bad_one() {
    let k = keys();
    let good = claims();
    let anne = Ok(vec!["user:anne".to_string(), "agent:planner".to_string()]);
    let tampered = {
        let token = rs256(&good);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = claims_with(json!({"sub": "admin"}));
        format!("{}.{}.{}", parts[0], b64(forged.to_string().as_bytes()), parts[2])
    };
    let hmac_with_modulus =
        sign(Algorithm::HS256, Some("rsa-1"), &EncodingKey::from_secret(&k.rsa_modulus).expect("a secret"), &good);
    let hmac_with_jwks =
        sign(Algorithm::HS256, Some("hmac-1"), &EncodingKey::from_secret(k.jwks.as_bytes()).expect("a secret"), &good);
    let hmac_with_oct =
        sign(Algorithm::HS256, Some("hmac-1"), &EncodingKey::from_secret(b"shared secret").expect("a secret"), &good);
    let cases: Vec<TokenCase> = vec![
        ("RS256", rs256(&good), anne.clone()),
        ("ES256", sign(Algorithm::ES256, Some("ec-1"), &k.ec, &good), anne.clone()),
        ("EdDSA", sign(Algorithm::EdDSA, Some("ed-1"), &k.ed, &good), anne.clone()),
        ("aud array", rs256(&claims_with(json!({"aud": ["https://other.example", AUDIENCE]}))), anne.clone()),
        ("expired within leeway", rs256(&claims_with(json!({"exp": NOW - 59}))), anne.clone()),
        ("nbf within leeway", rs256(&claims_with(json!({"nbf": NOW + 59}))), anne.clone()),
        ("tampered payload", tampered, Err(TokenError::BadSignature)),
        (
            "signed by a stranger",
            sign(Algorithm::ES256, Some("ec-1"), &k.stranger, &good),
            Err(TokenError::BadSignature),
        ),
        ("expired", rs256(&claims_with(json!({"exp": NOW - 61}))), Err(TokenError::Expired)),
        ("nbf in the future", rs256(&claims_with(json!({"nbf": NOW + 61}))), Err(TokenError::NotYetValid)),
        (
            "wrong aud",
            rs256(&claims_with(json!({"aud": "https://mcp.example.com/mcp/other"}))),
            Err(TokenError::WrongAudience { expected: AUDIENCE.into() }),
        ),
        (
            "aud with a trailing slash",
            rs256(&claims_with(json!({"aud": format!("{AUDIENCE}/")}))),
            Err(TokenError::WrongAudience { expected: AUDIENCE.into() }),
        ),
        (
            "no aud",
            rs256(&claims_with(json!({"aud": null}))),
            Err(TokenError::WrongAudience { expected: AUDIENCE.into() }),
        ),
        (
            "wrong iss",
            rs256(&claims_with(json!({"iss": "https://evil.example.com"}))),
            Err(TokenError::WrongIssuer { expected: ISSUER.into() }),
        ),
        ("no iss", rs256(&claims_with(json!({"iss": null}))), Err(TokenError::WrongIssuer { expected: ISSUER.into() })),
        (
            "alg none",
            unsigned(json!({"alg": "none", "typ": "JWT"}), &good, ""),
            Err(TokenError::DisallowedAlgorithm("none".into())),
        ),
        ("HS256 keyed with the RSA modulus", hmac_with_modulus, Err(TokenError::DisallowedAlgorithm("HS256".into()))),
        ("HS256 keyed with the JWKS text", hmac_with_jwks, Err(TokenError::DisallowedAlgorithm("HS256".into()))),
        ("HS256 with the JWKS's oct key", hmac_with_oct, Err(TokenError::DisallowedAlgorithm("HS256".into()))),
        (
            "ES256 naming the RSA key",
            sign(Algorithm::ES256, Some("rsa-1"), &k.ec, &good),
            Err(TokenError::DisallowedAlgorithm("ES256".into())),
        ),
        (
            "unknown kid",
            sign(Algorithm::ES256, Some("ec-9"), &k.ec, &good),
            Err(TokenError::UnknownKey { kid: Some("ec-9".into()) }),
        ),
        (
            "the encryption key's kid",
            sign(Algorithm::ES256, Some("enc-1"), &k.ec, &good),
            Err(TokenError::UnknownKey { kid: Some("enc-1".into()) }),
        ),
        (
            "no kid, several keys",
            sign(Algorithm::RS256, None, &k.rsa, &good),
            Err(TokenError::UnknownKey { kid: None }),
        ),
        (
            "no exp",
            rs256(&claims_with(json!({"exp": null}))),
            Err(TokenError::InvalidClaim { claim: "exp".into(), reason: "is missing".into() }),
        ),
        (
            "sub names a typed object",
            rs256(&claims_with(json!({"sub": "user:anne"}))),
            Err(TokenError::InvalidClaim { claim: "sub".into(), reason: "contains `:`".into() }),
        ),
        ("two parts", "abc.def".to_string(), Err(TokenError::Malformed("a JWT has three dot-separated parts".into()))),
        ("header not base64", "!!!.e30.sig".to_string(), Err(TokenError::Malformed("header is not base64url".into()))),
        (
            "crit header",
            unsigned(json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}), &good, "c2ln"),
            Err(TokenError::Malformed("header `crit` extensions are not supported".into())),
        ),
        ("empty", String::new(), Err(TokenError::Missing)),
    ];
    let verifier = verifier();
    let mut failures = Vec::new();
    for (name, token, expected) in cases {
        let got = verifier.verify(&token, AUDIENCE, NOW).map(|t| chain_text(&t.chain));
        if got != expected {
            failures.push(format!("{name}: got {got:?}, expected {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_default_settings_allow_rs256_only() {
    let verifier =
        Verifier::new(VerifierSettings::new(ISSUER), KeySet::from_jwks(keys().jwks.as_bytes()).expect("jwks"));
    assert!(verifier.verify(&rs256(&claims()), AUDIENCE, NOW).is_ok());
    let es256 = sign(Algorithm::ES256, Some("ec-1"), &keys().ec, &claims());
    assert_eq!(verifier.verify(&es256, AUDIENCE, NOW), Err(TokenError::DisallowedAlgorithm("ES256".into())));
}

#[test]
fn the_cache_keeps_verified_tokens_until_expiry_and_checks_the_audience_each_time() {
    let verifier = verifier();
    let token = rs256(&claims_with(json!({"exp": NOW + 100})));
    let first = verifier.verify(&token, AUDIENCE, NOW).expect("valid");
    let second = verifier.verify(&token, AUDIENCE, NOW + 10).expect("still valid");
    assert!(Arc::ptr_eq(&first, &second), "the second call is answered from the cache");
    assert_eq!(verifier.cached_tokens(), 1);
    let other = "https://mcp.example.com/mcp/other";
    assert_eq!(verifier.verify(&token, other, NOW), Err(TokenError::WrongAudience { expected: other.into() }));
    // Past `exp` plus the 60 s leeway the cached entry is refused and dropped.
    assert_eq!(verifier.verify(&token, AUDIENCE, NOW + 161), Err(TokenError::Expired));
    assert_eq!(verifier.cached_tokens(), 0);
}

#[test]
fn swapping_the_key_set_empties_the_cache_and_withdrawn_keys_stop_working() {
    let verifier = verifier();
    let token = sign(Algorithm::EdDSA, Some("ed-1"), &keys().ed, &claims());
    assert!(verifier.verify(&token, AUDIENCE, NOW).is_ok());
    let mut jwks: Value = serde_json::from_str(&keys().jwks).expect("json");
    jwks["keys"].as_array_mut().expect("keys").retain(|key| key["kid"] != "ed-1");
    verifier.replace_keys(KeySet::from_jwks(jwks.to_string().as_bytes()).expect("jwks"));
    assert_eq!(verifier.cached_tokens(), 0);
    assert_eq!(verifier.verify(&token, AUDIENCE, NOW), Err(TokenError::UnknownKey { kid: Some("ed-1".into()) }));
}

#[test]
fn the_cache_is_bounded() {
    let settings = VerifierSettings { cache_capacity: 2, ..VerifierSettings::new(ISSUER) };
    let verifier = Verifier::new(settings, KeySet::from_jwks(keys().jwks.as_bytes()).expect("jwks"));
    for n in 0..5 {
        let token = rs256(&claims_with(json!({"jti": n})));
        assert!(verifier.verify(&token, AUDIENCE, NOW).is_ok());
        assert!(verifier.cached_tokens() <= 2, "{} cached", verifier.cached_tokens());
    }
    assert_eq!(verifier.cached_tokens(), 2);
}

#[test]
fn claims_give_the_principal_chain() {
    let deep = (0..=MAX_ACTOR_DEPTH)
        .fold(json!({"sub": "a0"}), |inner, n| json!({"sub": format!("a{}", n + 1), "act": inner}));
    let long = "x".repeat(257);
    let cases: Vec<ChainCase> = vec![
        ("user and client", json!({"sub": "anne", "client_id": "planner"}), Ok(vec!["user:anne", "agent:planner"])),
        (
            "an email as sub",
            json!({"sub": "anne@example.com", "client_id": "planner"}),
            Ok(vec!["user:anne@example.com", "agent:planner"]),
        ),
        (
            "azp stands in for client_id",
            json!({"sub": "anne", "azp": "planner"}),
            Ok(vec!["user:anne", "agent:planner"]),
        ),
        (
            "client_id wins over azp",
            json!({"sub": "anne", "client_id": "p", "azp": "q"}),
            Ok(vec!["user:anne", "agent:p"]),
        ),
        ("client credentials", json!({"sub": "svc", "client_id": "svc"}), Ok(vec!["agent:svc"])),
        (
            "one actor",
            json!({"sub": "anne", "client_id": "ignored", "act": {"sub": "planner"}}),
            Ok(vec!["user:anne", "agent:planner"]),
        ),
        (
            "three hops, innermost first",
            json!({"sub": "anne", "act": {"sub": "coder", "act": {"sub": "researcher", "act": {"sub": "planner"}}}}),
            Ok(vec!["user:anne", "agent:planner", "agent:researcher", "agent:coder"]),
        ),
        (
            "an agent acting for itself delegates",
            json!({"sub": "svc", "client_id": "svc", "act": {"sub": "helper"}}),
            Ok(vec!["agent:svc", "agent:helper"]),
        ),
        ("no sub", json!({"client_id": "planner"}), Err(("sub", "is missing"))),
        ("sub is a number", json!({"sub": 7, "client_id": "planner"}), Err(("sub", "is not a string"))),
        ("empty sub", json!({"sub": "", "client_id": "planner"}), Err(("sub", "is empty"))),
        ("sub with #", json!({"sub": "a#b", "client_id": "planner"}), Err(("sub", "contains `#`"))),
        ("sub with :", json!({"sub": "user:root", "client_id": "planner"}), Err(("sub", "contains `:`"))),
        ("sub with space", json!({"sub": "a b", "client_id": "planner"}), Err(("sub", "contains whitespace"))),
        ("sub too long", json!({"sub": long, "client_id": "planner"}), Err(("sub", "is longer than 256 bytes"))),
        ("no client, no act", json!({"sub": "anne"}), Err(("client_id", "is missing (and so is `azp`)"))),
        ("bad client_id", json!({"sub": "anne", "client_id": "a#b"}), Err(("client_id", "contains `#`"))),
        ("bad azp", json!({"sub": "anne", "azp": "*"}), Err(("azp", "starts with `*`"))),
        ("act not an object", json!({"sub": "anne", "act": "planner"}), Err(("act", "is not an object"))),
        (
            "nested act without sub",
            json!({"sub": "anne", "act": {"sub": "b", "act": {}}}),
            Err(("act.act.sub", "is missing")),
        ),
        ("actor with #", json!({"sub": "anne", "act": {"sub": "bot#x"}}), Err(("act.sub", "contains `#`"))),
        (
            "too deep",
            json!({"sub": "anne", "act": deep}),
            Err(("act.act.act.act.act.act.act.act.act.act.act.act.act.act.act.act.act", "nests deeper than 16 actors")),
        ),
    ];
    let mut failures = Vec::new();
    for (name, claims, expected) in cases {
        let claims = claims.as_object().expect("claims are an object").clone();
        let got = principal_chain(&claims, "user", "agent").map(|chain| chain_text(&chain));
        let expected = expected
            .map(|chain| chain.into_iter().map(str::to_string).collect::<Vec<_>>())
            .map_err(|(claim, reason)| invalid(claim, reason));
        if got != expected {
            failures.push(format!("{name}: got {got:?}, expected {expected:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let custom = json!({"sub": "anne", "act": {"sub": "planner"}});
    let chain = principal_chain(custom.as_object().expect("object"), "person", "bot").expect("valid");
    assert_eq!(chain_text(&chain), ["person:anne", "bot:planner"]);
}

#[test]
fn key_sets_refuse_bad_documents() {
    let short_rsa = json!({"keys": [{"kty": "RSA", "kid": "r", "n": b64(&[0xC5; 128]), "e": "AQAB"}]});
    let short_ed = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "e", "x": b64(&[1; 16])}]});
    let cases: Vec<(&str, String, KeySetError)> = vec![
        ("not json", "nope".into(), KeySetError::Shape("expected ident at line 1 column 2".into())),
        ("no keys", "{}".into(), KeySetError::Shape("no `keys` array".into())),
        ("only hmac", json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string(), KeySetError::NoUsableKey),
        (
            "only RS384",
            json!({"keys": [{"kty": "RSA", "alg": "RS384", "n": b64(&[0xC5; 256]), "e": "AQAB"}]}).to_string(),
            KeySetError::NoUsableKey,
        ),
        (
            "short RSA",
            short_rsa.to_string(),
            KeySetError::Key { index: 0, reason: "RSA modulus is shorter than 2048 bits".into() },
        ),
        (
            "short Ed25519",
            short_ed.to_string(),
            KeySetError::Key { index: 0, reason: "Ed25519 key `x` must be 32 bytes".into() },
        ),
        (
            "EC without y",
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(&[1; 32])}]}).to_string(),
            KeySetError::Key { index: 0, reason: "`y` is missing".into() },
        ),
        (
            "duplicate kid",
            json!({"keys": [
                {"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": b64(&[1; 32])},
                {"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": b64(&[2; 32])},
            ]})
            .to_string(),
            KeySetError::DuplicateKid("k".into()),
        ),
    ];
    for (name, document, expected) in cases {
        assert_eq!(KeySet::from_jwks(document.as_bytes()).err(), Some(expected), "{name}");
    }
    assert_eq!(
        KeySet::from_jwks(keys().jwks.as_bytes()).map(|set| set.len()),
        Ok(3),
        "rsa, ec and ed; oct and enc skipped"
    );
}

#[test]
fn bearer_tokens_are_read_from_the_authorization_header() {
    assert_eq!(bearer_token(None), Err(TokenError::Missing));
    assert_eq!(bearer_token(Some("Bearer abc.def.ghi")), Ok("abc.def.ghi"));
    assert_eq!(bearer_token(Some("bearer  abc.def.ghi ")), Ok("abc.def.ghi"));
    for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearer a\"b", "abc"] {
        assert!(matches!(bearer_token(Some(bad)), Err(TokenError::Malformed(_))), "{bad}");
    }
    assert_eq!(TokenError::Missing.bearer_error_code(), None);
    assert_eq!(TokenError::Expired.bearer_error_code(), Some("invalid_token"));
}
