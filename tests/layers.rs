//! The crate's top-level modules form layers: each imports only the modules
//! listed before it in `src/lib.rs`, so no two import each other and the
//! pure ones (`proto`, `config`, `core`) never reach the runtime.

use std::path::Path;

/// Top-level modules, lowest layer first.
const LAYERS: &[&str] = &["log", "proto", "config", "core", "storage", "runtime", "server"];

/// Every `.rs` file under `path` (or `path` itself when it is a file).
fn sources(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        sources(&entry.path(), out);
    }
}

#[test]
fn top_level_modules_import_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for (rank, module) in LAYERS.iter().enumerate() {
        let mut files = Vec::new();
        for candidate in [src.join(module), src.join(format!("{module}.rs"))] {
            if candidate.exists() {
                sources(&candidate, &mut files);
            }
        }
        assert!(!files.is_empty(), "module {module} has no source");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            checked += 1;
            for higher in &LAYERS[rank + 1..] {
                if text.contains(&format!("crate::{higher}::")) || text.contains(&format!("crate::{higher};")) {
                    violations.push(format!("{} ({module}) imports {higher}", file.display()));
                }
            }
        }
    }
    assert!(checked > 20, "the source tree was found ({checked} files)");
    assert!(violations.is_empty(), "imports against the layering:\n{}", violations.join("\n"));
}
