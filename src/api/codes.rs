//! OpenFGA's wire codes for engine errors: the number and name each [`EngineError`] carries in
//! an HTTP error body (`{"code": name}`) and in `fga model test`'s gRPC-style messages.
//!
//! The codes are a protocol matter, so they live with the API rather than in `engine`, which
//! knows what went wrong but not how OpenFGA spells it. The mapping is an inherent method, so
//! every caller writes `error.openfga_code()`. Invariant: every variant has a code, and a
//! variant OpenFGA lacks gets Writ's own name under OpenFGA's nearest number.
//! Must not import `store`, `index` or `eval` (but `crate::EvalError`, which errors carry).

use crate::engine::EngineError;
use crate::EvalError;

impl EngineError {
    /// OpenFGA's error code for this error: its number and its name.
    pub fn openfga_code(&self) -> (u32, &'static str) {
        match self {
            EngineError::Validation(_) | EngineError::InvalidTuple { .. } => (2000, "validation_error"),
            EngineError::ModelNotFound(_) => (2001, "authorization_model_not_found"),
            EngineError::Eval(EvalError::DepthExceeded { .. }) => (2002, "authorization_model_resolution_too_complex"),
            EngineError::Eval(EvalError::DeadlineExceeded) => (4004, "deadline_exceeded"),
            EngineError::Eval(_) => (2000, "validation_error"),
            EngineError::DuplicateInRequest(_) => (2004, "cannot_allow_duplicate_tuples_in_one_request"),
            EngineError::WriteConflict(_) => (2017, "write_failed_due_to_invalid_input"),
            EngineError::NoModel(_) => (2020, "latest_authorization_model_not_found"),
            EngineError::TypeNotFound(_) => (2021, "type_not_found"),
            EngineError::RelationNotFound { .. } => (2022, "relation_not_found"),
            EngineError::InvalidContextualTuple { .. } => (2027, "invalid_tuple"),
            EngineError::Schema(_) => (2056, "invalid_authorization_model"),
            EngineError::LimitExceeded { code, .. } => (2000, code),
            EngineError::StoreNotFound(_) => (5002, "store_id_not_found"),
            // Writ's own: OpenFGA has no revision tokens.
            EngineError::RevisionUnavailable { .. } => (2000, "revision_unavailable"),
            // Writ's own: OpenFGA has no approvals.
            EngineError::ApprovalNotFound(_) => (2000, "approval_not_found"),
            EngineError::ApprovalDecided { .. } => (2000, "approval_already_decided"),
            EngineError::InvalidContinuationToken(_) => (2007, "invalid_continuation_token"),
            EngineError::Store(_) => (4000, "internal_error"),
        }
    }
}
