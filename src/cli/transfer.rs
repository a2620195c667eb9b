//! Bulk tuple transfer for `writ import` and `writ export`: JSON Lines of OpenFGA tuple keys
//! (`{"user","relation","object","condition"?,"expires_at"?}`, the shape `fga tuple write --file`
//! reads), streamed in batches through [`StoreHandle::write`](crate::engine::StoreHandle::write) so every batch is validated against the
//! store's model and durable before the next one starts.
//!
//! Invariant: an import is resumable. Batches commit in file order with duplicates ignored, so a
//! rerun of the same file (or `--from-line` the last line reported) ends in the same store.
//! A bad line stops the import with its line number; every batch before it stays committed.
//! `--store` takes an id or a name that one store has; `--create-store NAME` resumes into the
//! store of that name when there is one (see [`import_target`]).
//! Must not import `store`, `index` or `eval`.

use crate::engine::{Engine, EngineError, ReadFilter, StoreRecord, WriteRequest};
use crate::model::Model;
use crate::tuple::StoredTuple;
use crate::wire::{TupleKeyAnswer, TupleKeyDto};
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
    /// No store has this id, nor this name.
    #[error("no store has the id or name `{0}`")]
    NoSuchStore(String),
    /// Several stores have this name (and none has it as id).
    #[error("store name `{name}` is ambiguous: stores {} have it; give one id", .ids.join(", "))]
    AmbiguousStore {
        /// The name given.
        name: String,
        /// The ids of the stores of that name, oldest first.
        ids: Vec<String>,
    },
    /// Reading or writing a file failed. Transparent, so an error chain never says it twice.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Any other engine error (transparent, like `Io`).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The store `id_or_name` names: the store with that id, else the one store with that name.
pub fn find_store(engine: &Engine, id_or_name: &str) -> Result<StoreRecord, TransferError> {
    match engine.get_store(id_or_name) {
        Ok(record) => return Ok(record),
        Err(EngineError::StoreNotFound(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let mut named = stores_named(engine, id_or_name);
    match named.len() {
        0 => Err(TransferError::NoSuchStore(id_or_name.to_string())),
        1 => Ok(named.remove(0)),
        _ => Err(TransferError::AmbiguousStore {
            name: id_or_name.to_string(),
            ids: named.into_iter().map(|record| record.id).collect(),
        }),
    }
}

/// Every store named `name`, oldest first.
fn stores_named(engine: &Engine, name: &str) -> Vec<StoreRecord> {
    engine.list_stores().into_iter().filter(|record| record.name == name).collect()
}

/// The store `writ import --create-store NAME` loads into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportTarget {
    /// A store of that name existed (an earlier run made it): the import resumes into it.
    Existing(StoreRecord),
    /// A new store, with the given model written as its first model.
    Created {
        /// The new store.
        store: StoreRecord,
        /// The id of its model.
        model_id: String,
    },
}

/// The store named `name` for an import: the existing one, so rerunning an import resumes into
/// the store the first run made (imports ignore duplicates), or else a new store with `model`.
/// An existing store without a model (a first run stopped between the two steps) gets `model`.
/// Several stores of that name are refused with their ids: which one to resume is not guessable.
pub fn import_target(engine: &Engine, name: &str, model: Model) -> Result<ImportTarget, TransferError> {
    let mut named = stores_named(engine, name);
    match named.len() {
        0 => {
            let store = engine.create_store(name)?;
            let model_id = engine.store(&store.id)?.write_model(model)?;
            Ok(ImportTarget::Created { store, model_id })
        }
        1 => {
            let store = named.remove(0);
            let handle = engine.store(&store.id)?;
            if handle.models()?.is_empty() {
                let model_id = handle.write_model(model)?;
                return Ok(ImportTarget::Created { store, model_id });
            }
            Ok(ImportTarget::Existing(store))
        }
        _ => Err(TransferError::AmbiguousStore {
            name: name.to_string(),
            ids: named.into_iter().map(|record| record.id).collect(),
        }),
    }
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

/// Batches the reading thread may parse ahead of the batch being committed.
const PARSE_AHEAD: usize = 2;

/// A batch parsed from the input, ready to commit.
struct Parsed {
    /// Its tuples, a tuple repeated within the batch kept once.
    writes: Vec<StoredTuple>,
    /// How many lines it holds (repeats included).
    count: u64,
    /// Its last line (1-based).
    line: usize,
    /// Bytes of input consumed through its last line.
    bytes: u64,
}

/// Streams JSON Lines tuple keys from `input` into `store_id`. Blank lines are skipped.
/// `progress` runs after every committed batch.
///
/// A second thread reads and parses the next batch while the current one is written, so parsing
/// overlaps the store's flush; batches still commit one at a time, in file order.
pub fn import(
    engine: &Engine,
    store_id: &str,
    input: impl BufRead + Send,
    options: ImportOptions,
    mut progress: impl FnMut(ImportProgress),
) -> Result<ImportProgress, TransferError> {
    let mut state = ImportProgress { revision: engine.store(store_id)?.revision()?, ..ImportProgress::default() };
    let (sender, batches) = std::sync::mpsc::sync_channel(PARSE_AHEAD);
    std::thread::scope(|scope| {
        // Ends when the input does, at the first bad line, or when the committing side hangs up.
        let reader = std::thread::Builder::new()
            .name("writ-import-reader".into())
            .spawn_scoped(scope, move || read_batches(input, options, &sender))?;
        // Dropping `batches` on an early return stops the reader at its next batch.
        for parsed in batches {
            let parsed = parsed?;
            state.bytes = parsed.bytes;
            commit(engine, store_id, parsed, &mut state)?;
            progress(state);
        }
        // The reader hung up: the input ended (or it failed, which would leave the import short).
        state.bytes = reader.join().map_err(|_| std::io::Error::other("the input reader stopped"))?;
        Ok(state)
    })
}

/// Reads `input` into batches of `options.batch` tuples and sends them in order, then the error
/// that stopped it, if any; returns the bytes it read.
fn read_batches(
    input: impl BufRead,
    options: ImportOptions,
    sender: &std::sync::mpsc::SyncSender<Result<Parsed, TransferError>>,
) -> u64 {
    let batch_size = options.batch.max(1);
    let mut batch: Vec<StoredTuple> = Vec::with_capacity(batch_size);
    let mut bytes = 0;
    let mut last_line = 0;
    let send = |batch: &mut Vec<StoredTuple>, line: usize, bytes: u64| {
        let writes = std::mem::replace(batch, Vec::with_capacity(batch_size));
        let count = writes.len() as u64;
        sender.send(Ok(Parsed { writes: without_repeats(writes), count, line, bytes })).is_ok()
    };
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                let _ = sender.send(Err(error.into()));
                return bytes;
            }
        };
        bytes += line.len() as u64 + 1;
        if number <= options.after_line || line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok(stored) => batch.push(stored),
            Err(message) => {
                let _ = sender.send(Err(TransferError::BadLine { line: number, message }));
                return bytes;
            }
        }
        if batch.len() == batch_size && !send(&mut batch, number, bytes) {
            return bytes;
        }
        last_line = number;
    }
    if !batch.is_empty() {
        send(&mut batch, last_line, bytes);
    }
    bytes
}

fn parse_line(line: &str) -> Result<StoredTuple, String> {
    let key: TupleKeyDto = serde_json::from_str(line).map_err(|e| format!("not a tuple key: {e}"))?;
    key.to_stored().map_err(|e| e.to_string())
}

/// `writes` with every repeat of a tuple (same object, relation and subject) after its first left
/// out: a file may repeat a tuple; within one write that is an error, across writes it is ignored.
fn without_repeats(mut writes: Vec<StoredTuple>) -> Vec<StoredTuple> {
    let keep: Vec<bool> = {
        let mut seen = rustc_hash::FxHashSet::default();
        writes.iter().map(|w| seen.insert(w.tuple.identity())).collect()
    };
    let mut keep = keep.into_iter();
    writes.retain(|_| keep.next().unwrap_or(true));
    writes
}

fn commit(engine: &Engine, store_id: &str, parsed: Parsed, state: &mut ImportProgress) -> Result<(), TransferError> {
    let line = parsed.line;
    let request = WriteRequest { writes: parsed.writes, ignore_duplicates: true, ..WriteRequest::default() };
    state.revision = engine
        .store(store_id)
        .and_then(|store| store.write(request))
        .map_err(|source| TransferError::Batch { line, source })?;
    state.tuples += parsed.count;
    state.line = line;
    Ok(())
}

/// Writes every tuple of `store_id` to `output` as JSON Lines; returns how many. Pages through
/// the store ([`StoreHandle::read_page`](crate::engine::StoreHandle::read_page)), so it holds one page at a time, never the whole store; a
/// tuple present throughout is written exactly once, whatever writes land meanwhile.
pub fn export(engine: &Engine, store_id: &str, mut output: impl Write) -> Result<u64, TransferError> {
    let store = engine.store(store_id)?;
    let mut written = 0u64;
    let mut after = None;
    loop {
        let page = store.read_page(&ReadFilter::default(), after, EXPORT_PAGE)?;
        for tuple in &page.tuples {
            serde_json::to_writer(&mut output, &TupleKeyAnswer::from(tuple)).map_err(std::io::Error::from)?;
            output.write_all(b"\n")?;
        }
        written += page.tuples.len() as u64;
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    output.flush()?;
    Ok(written)
}

/// Tuples per page of an export: large enough that the per-page cost vanishes, small enough that
/// a page is a few hundred kilobytes.
const EXPORT_PAGE: usize = 1_000;
