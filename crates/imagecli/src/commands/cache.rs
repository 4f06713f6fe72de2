//! `osimage cache ls|gc|verify`.

/// Cache subcommands.
#[derive(clap::Subcommand)]
pub enum CacheCmd {
    /// List cached step outputs.
    Ls(super::CacheArg),
    /// Drop outputs no recorded build uses, then unreferenced blobs.
    Gc(super::CacheArg),
    /// Re-hash every blob; exit 1 if any is damaged.
    Verify(super::CacheArg),
}

/// Run a cache subcommand.
pub fn run(c: CacheCmd) -> anyhow::Result<i32> {
    match c {
        CacheCmd::Ls(a) => {
            let store = a.open()?;
            for o in store.list()? {
                println!("{o}");
            }
            Ok(0)
        }
        CacheCmd::Gc(a) => {
            let store = a.open()?;
            // keeps every output named by a recorded build (the last build of each spec)
            let r = store.gc(&[])?;
            println!("{r}");
            Ok(0)
        }
        CacheCmd::Verify(a) => {
            let store = a.open()?;
            let r = store.verify()?;
            println!("{r}");
            Ok(if r.ok() { 0 } else { 1 })
        }
    }
}
