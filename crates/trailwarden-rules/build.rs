//! Embeds the shipped rule pack (`rules/**/*.yml` at the workspace root) in the crate.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("../../rules");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = String::from("pub(crate) static BUILT_IN: &[(&str, &str)] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under the root");
        let name = relative.to_string_lossy().replace('\\', "/");
        let absolute = file.canonicalize().expect("readable rule file");
        writeln!(
            out,
            "    ({:?}, include_str!({:?})),",
            format!("rules/{name}"),
            absolute
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("built_in.rs");
    std::fs::write(dest, out).expect("write built_in.rs");
}

/// Every `.yml`/`.yaml` file under `dir`; each directory is watched so new files rebuild.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
}
