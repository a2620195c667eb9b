//! Bulk tuple transfer for `writ import` and `writ export`: JSON Lines of OpenFGA tuple keys
//! (`{"user","relation","object","condition"?,"expires_at"?}`, the shape `fga tuple write --file`
//! reads), streamed in batches through [`Engine::write`] so every batch is validated against the
//! store's model and durable before the next one starts.
//!
//! Invariant: an import is resumable. Batches commit in file order with duplicates ignored, so a
//! rerun of the same file (or `--from-line` the last line reported) ends in the same store.
//! A bad line stops the import with its line number; every batch before it stays committed.
//! Must not import `store` items other than `StoredTuple`, nor `index` or `eval`.

use crate::api::dto::{stored_tuple_key_json, TupleKeyDto};
use crate::engine::{Engine, EngineError, ReadFilter, WriteRequest};
use crate::store::StoredTuple;
use std::io::{BufRead, Write};

/// What can stop an import or export.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A line is not a tuple key.
    #[error("line {line}: {message}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The engine refused a batch (validation against the model, unknown store, storage).
    #[error("batch ending at line {line} refused")]
    Batch {
        /// The last line of the refused batch; every earlier batch is committed.
        line: usize,
        /// The engine's reason.
        #[source]
        source: EngineError,
    },
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Any other engine error.
    #[error("{0}")]
    Engine(#[from] EngineError),
}

/// Progress of an import, reported after each committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    /// The last line committed (1-based); a rerun may start after it.
    pub line: usize,
    /// Tuples sent so far (including duplicates the store already had).
    pub tuples: u64,
    /// Bytes of input consumed so far.
    pub bytes: u64,
    /// The store's revision after the last batch.
    pub revision: u64,
}

/// Import settings.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Tuples per write transaction (one durable flush each).
    pub batch: usize,
    /// Skip lines up to and including this one (1-based); 0 reads everything.
    pub after_line: usize,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { batch: 1000, after_line: 0 }
    }
}

/// Streams JSON Lines tuple keys from `input` into `store_id`. Blank lines are skipped.
/// `progress` runs after every committed batch.
pub fn import(
    engine: &Engine,
    store_id: &str,
    input: impl BufRead,
    options: ImportOptions,
    mut progress: impl FnMut(ImportProgress),
) -> Result<ImportProgress, TransferError> {
    let batch_size = options.batch.max(1);
    let mut state = ImportProgress { revision: engine.revision(store_id)?, ..ImportProgress::default() };
    let mut batch: Vec<StoredTuple> = Vec::with_capacity(batch_size);
    let mut last_line = 0;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line?;
        state.bytes += line.len() as u64 + 1;
        if number <= options.after_line || line.trim().is_empty() {
            continue;
        }
        batch.push(parse_line(&line).map_err(|message| TransferError::BadLine { line: number, message })?);
        if batch.len() == batch_size {
            commit(engine, store_id, &mut batch, number, &mut state)?;
            progress(state);
        }
        last_line = number;
    }
    if !batch.is_empty() {
        commit(engine, store_id, &mut batch, last_line, &mut state)?;
        progress(state);
    }
    Ok(state)
}

fn parse_line(line: &str) -> Result<StoredTuple, String> {
    let key: TupleKeyDto = serde_json::from_str(line).map_err(|e| format!("not a tuple key: {e}"))?;
    key.to_stored().map_err(|e| e.to_string())
}

fn commit(
    engine: &Engine,
    store_id: &str,
    batch: &mut Vec<StoredTuple>,
    line: usize,
    state: &mut ImportProgress,
) -> Result<(), TransferError> {
    let mut writes = std::mem::take(batch);
    let count = writes.len() as u64;
    // A file may repeat a tuple; within one write that is an error, across writes it is ignored.
    let mut seen = rustc_hash::FxHashSet::default();
    writes.retain(|w| seen.insert((w.tuple.object.clone(), w.tuple.relation.clone(), w.tuple.subject.clone())));
    let request = WriteRequest { writes, ignore_duplicates: true, ..WriteRequest::default() };
    state.revision = engine.write(store_id, request).map_err(|source| TransferError::Batch { line, source })?;
    state.tuples += count;
    state.line = line;
    Ok(())
}

/// Writes every tuple of `store_id` to `output` as JSON Lines; returns how many.
pub fn export(engine: &Engine, store_id: &str, mut output: impl Write) -> Result<u64, TransferError> {
    let tuples = engine.read(store_id, &ReadFilter::default())?.value;
    for tuple in &tuples {
        serde_json::to_writer(&mut output, &stored_tuple_key_json(tuple)).map_err(std::io::Error::from)?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(tuples.len() as u64)
}
