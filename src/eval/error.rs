//! Errors of evaluation: a question that cannot be answered, as opposed to a "no".
//!
//! Invariant: an unknown object id is never an error (it is simply not allowed).
//! Must not import anything outside `eval`, `index`, `model`, `tuple`.

/// Why an evaluation could not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// More nested dispatches than the configured limit.
    #[error("resolution depth exceeded the limit of {limit}")]
    DepthExceeded {
        /// The configured limit.
        limit: u32,
    },
    /// The request's deadline passed before the evaluation finished.
    #[error("the request did not finish before its deadline")]
    DeadlineExceeded,
    /// A condition was evaluated and failed (e.g. a missing parameter, a context value of the
    /// wrong type, a result that is not a bool). Worded as OpenFGA words it.
    #[error("failed to evaluate relationship condition '{name}': {message}")]
    Condition {
        /// The condition's name.
        name: String,
        /// What went wrong.
        message: String,
    },
}
