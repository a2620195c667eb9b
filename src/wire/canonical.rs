//! The canonical form of JSON arguments and its SHA-256 digest: what the gateway's decision
//! records (`audit.arguments_sha256`) and approvals (DESIGN §12) compare, so the same call gives
//! the same digest through the gateway and through `writ/obo-check`.
//!
//! Canonical JSON: object keys sorted (by their UTF-8 bytes), no whitespace, arrays in order,
//! scalars as `serde_json` writes them. Invariant: two values equal as JSON (key order aside)
//! have equal digests. Must not import anything in the crate.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// The SHA-256, in lowercase hex, of `arguments` as canonical JSON (object keys sorted, no
/// whitespace): the same arguments in any key order or layout give the same digest, which the
/// decision log's `audit.arguments_sha256` and approvals (DESIGN §12) compare.
pub fn arguments_sha256(arguments: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(arguments, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
