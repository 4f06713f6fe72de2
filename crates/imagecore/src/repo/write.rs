//! Writing repodata (`osimage createrepo`).

/// Write repodata for the `.rpm` files below `dir`.
pub fn createrepo(
    _dir: &std::path::Path,
    _comps: Option<&std::path::Path>,
) -> Result<(), super::RepoError> {
    Err(super::RepoError::Metadata {
        path: _dir.to_path_buf(),
        message: "not implemented: createrepo".into(),
    })
}
