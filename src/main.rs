//! The `writ` binary: installs the allocator and hands the command line to [`writ::cli::run`].
//! Thin by design: the subcommands, their arguments and their bodies live in `writ::cli`.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: the index leaves glibc's heap with long free lists,
/// and lookups allocate many small bitmaps and strings, which glibc then serves slowly. Set in the
/// binary (not the library) so embedders keep their own allocator; the figure is in
/// benches/README.md ("Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    writ::cli::run()
}
