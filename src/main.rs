//! The `keeper` binary: see [`keeper::server::cli`].

/// The allocator: jemalloc keeps each size class in slabs of its own, so
/// the short-lived allocations of each write (request, transaction, the
/// parent's copied child-set blocks) never leave holes between long-lived
/// nodes the way glibc's chunk splitting did. Measured (PERF.md, memory):
/// RSS after populating 100k znodes 45.7 -> 41.7 MiB, 1M znodes 430 -> 363 MiB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: a background thread returns
/// freed pages to the kernel after about a second, so the resident set
/// tracks what the tree holds without the hot path paying for it.
/// Returning them at once on every free (`dirty_decay_ms:0`) cost 40% more
/// server CPU per set at 64 clients (PERF.md). An operator can add options
/// through the `_RJEM_MALLOC_CONF` environment variable (jemalloc's
/// `MALLOC_CONF`).
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &[u8; 60] = JEMALLOC_OPTIONS;
const JEMALLOC_OPTIONS: &[u8; 60] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
const _: () = assert!(JEMALLOC_OPTIONS[JEMALLOC_OPTIONS.len() - 1] == 0, "jemalloc reads a C string");

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(keeper::server::cli::main(args));
}
