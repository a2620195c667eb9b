//! What-if evaluation: answers on-behalf-of checks as they would be if one stored tuple were
//! deleted, without deleting it (the console's revoke preview, DESIGN §10).
//!
//! What it owns: a private copy of one snapshot's index with the tuple removed, evaluated exactly
//! as `obo_check` evaluates (the same [`decide_obo`]), so a preview never promises what the real
//! delete would not do.
//! **Invariant:** nothing is written and the store's own index is not changed; every answer of
//! one call reads the same copy, taken at one revision.
//! Must not import `api` or `store`.

use super::agent::decide_obo;
use super::{find_model, Answer, EngineError, OboCheckRequest, StoreHandle};
use crate::eval::Evaluator;
use crate::index::View;
use crate::tuple::Tuple;

impl StoreHandle<'_> {
    /// Answers each of `requests` (a chain of one is a plain check) as if `removed` had been
    /// deleted at the current revision; contextual tuples are not read. Costs one copy of the
    /// store's index, taken under the read lock and evaluated after it is released, so writers
    /// wait only for the copy.
    pub fn obo_checks_without(
        &self,
        removed: &Tuple,
        requests: &[OboCheckRequest],
    ) -> Result<Answer<Vec<bool>>, EngineError> {
        let state = self.state.live()?;
        let (mut index, revision, models) = {
            let data = state.data.read();
            let models = requests
                .iter()
                .map(|request| find_model(&data, self.id(), request.model_id.as_deref()).map(|v| v.compiled.clone()))
                .collect::<Result<Vec<_>, _>>()?;
            (data.index.clone(), data.revision, models)
        };
        index.remove(removed);
        let now = self.core.now_for(&index);
        let answers = requests
            .iter()
            .zip(&models)
            .map(|(request, compiled)| {
                let evaluator = Evaluator {
                    model: compiled,
                    view: View::new(&index).at(now),
                    limits: self.eval_limits(),
                    context: &request.context,
                };
                decide_obo(&evaluator, request).map(|decision| decision.allowed)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Answer { value: answers, revision })
    }
}
