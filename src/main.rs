//! The `keeper` binary: see [`keeper::server::cli`].

/// The allocator: jemalloc keeps each size class in slabs of its own, so
/// the short-lived allocations of each write (request, transaction, the
/// parent's copied child-set blocks) never leave holes between long-lived
/// nodes the way glibc's chunk splitting did. Measured (PERF.md, memory):
/// RSS after populating 100k znodes 46.8 -> 44 MB, 1M znodes 441 -> 374 MB,
/// server CPU per get, set and create unchanged within noise.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: freed pages go back to the
/// kernel at once instead of after a 10 s decay, so the resident set tracks
/// what the tree holds. An operator can add options through the
/// `_RJEM_MALLOC_CONF` environment variable (jemalloc's `MALLOC_CONF`).
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &[u8; 34] = JEMALLOC_OPTIONS;
const JEMALLOC_OPTIONS: &[u8; 34] = b"dirty_decay_ms:0,muzzy_decay_ms:0\0";
const _: () = assert!(JEMALLOC_OPTIONS[JEMALLOC_OPTIONS.len() - 1] == 0, "jemalloc reads a C string");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(keeper::server::cli::main(args));
}
