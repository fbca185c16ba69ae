//! Tidy checks that run with `cargo test`: project conventions a compiler does not enforce.
//!
//! Every Rust file under `crates/*/{src,tests,benches,examples}` must open with a `//!`
//! paragraph saying what it is for (STYLE.md, "Every module opens with a `//!` paragraph").

use std::fs;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn opens_with_module_doc(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("#!["));
    first.is_some_and(|line| line.starts_with("//!"))
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let root = workspace_root();
    let mut files = Vec::new();
    for crate_dir in fs::read_dir(root.join("crates"))
        .expect("crates dir")
        .flatten()
    {
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&crate_dir.path().join(sub), &mut files);
        }
    }
    assert!(
        files.len() > 10,
        "tidy found suspiciously few files: {files:?}"
    );
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !opens_with_module_doc(&fs::read_to_string(path).unwrap_or_default()))
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(path)
                .display()
                .to_string()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` module doc:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_module_doc_check_rejects_files_without_one() {
    assert!(opens_with_module_doc("//! What this is.\nfn main() {}"));
    assert!(opens_with_module_doc(
        "\n#![allow(x)]\n//! Doc after an inner attribute."
    ));
    assert!(!opens_with_module_doc("// A plain comment.\nfn main() {}"));
    assert!(!opens_with_module_doc("use std::fs;\n//! Too late."));
    assert!(!opens_with_module_doc(""));
}
