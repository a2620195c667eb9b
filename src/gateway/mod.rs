//! The MCP gateway (DESIGN §8): the enforcement point in an agent's path. One file per concern, in
//! the order a request meets them:
//!
//! 1. `token`: verify the bearer JWT against the issuer's keys and give the principal chain
//!    (human first, current actor last). Pure given the keys and the clock.
//! 2. `mapping` (configured by `config`): which checks a JSON-RPC message needs (tool, resource or
//!    prompt → relation on an object, placeholders resolved from the call's arguments). Pure.
//! 3. `proxy` (to come): streamable HTTP to the upstream server and back, filtering `tools/list`.
//! 4. the router (to come, here in `mod.rs`): the routes under `/mcp/{server}` and the RFC 9728
//!    metadata, each decision an OBO check by `engine`.
//!
//! Invariant: the gateway never evaluates a permission itself: it only says which checks a
//! message needs (failing closed when it cannot tell), and `engine` decides them.
//! It uses `engine` (and `tuple`), never `store`; `token`, `config` and `mapping` do no I/O at all
//! (files and URLs are read by their caller, the environment is a lookup passed in).

pub mod config;
mod id;
pub mod mapping;
pub mod token;

pub use config::{ConfigError, GatewayConfig, JwksSource, Mode, ServerConfig};
pub use id::MAX_ID_BYTES;
pub use mapping::{arguments_sha256, Check, Denial, ListPlan, MappingError, Requirement};
pub use token::{KeySet, KeySetError, SigningAlgorithm, TokenError, VerifiedToken, Verifier, VerifierSettings};
