//! Reading a spec file and its `extends` chain.

use std::path::{Path, PathBuf};

use super::raw::Layer;
use super::{Spec, SpecError, resolve};

pub(super) fn load(path: &Path) -> Result<Spec, SpecError> {
    let canon = std::fs::canonicalize(path).map_err(|source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    let mut chain = Vec::new();
    let layer = load_chain(&canon, &mut chain, &mut files)?;
    resolve::resolve(layer, canon, files)
}

/// Parse `file` and, recursively, what it extends; `chain` holds the files being loaded.
fn load_chain(
    file: &Path,
    chain: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<Layer, SpecError> {
    let text = std::fs::read_to_string(file).map_err(|source| SpecError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    chain.push(file.to_path_buf());
    if !files.iter().any(|f| f == file) {
        files.push(file.to_path_buf());
    }
    let mut layer = Layer::parse(file, text)?;
    if let Some(ext) = layer.extends().cloned() {
        if ext.value.trim().is_empty() {
            return Err(SpecError::Invalid {
                at: ext.origin,
                message: "extends is empty; name the parent spec file or remove the key".into(),
            });
        }
        let dir = file.parent().unwrap_or(Path::new("/"));
        let target = resolve::normalize(&dir.join(&ext.value));
        let canon = std::fs::canonicalize(&target).map_err(|source| SpecError::MissingFile {
            at: ext.origin.clone(),
            what: "extends file".into(),
            path: target.clone(),
            source,
        })?;
        if let Some(pos) = chain.iter().position(|c| *c == canon) {
            let mut names: Vec<String> = chain[pos..]
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            names.push(canon.display().to_string());
            return Err(SpecError::ExtendsCycle {
                at: ext.origin,
                chain: names.join(" -> "),
            });
        }
        let parent = load_chain(&canon, chain, files)?;
        layer.merge_parent(parent);
    }
    chain.pop();
    Ok(layer)
}
