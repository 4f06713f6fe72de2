//! The image's rpmdb: rpm ≥ 4.16's sqlite `rpmdb.sqlite`, written natively.
//!
//! Each `Packages` row holds the package header as rpm itself stores it after an install: the
//! package's immutable region unchanged (index entries and data), followed by "dribble" entries
//! appended after the region, sorted by tag, each aligned for its type: the legacy signature
//! tags merged from the signature header (SIGSIZE, SIGMD5, SHA1HEADER, SHA256HEADER,
//! ARCHIVESIZE, …) and the install-time tags (INSTALLTIME, FILESTATES, INSTPREFIXES,
//! INSTALLCOLOR, INSTALLTID). Every index table of rpm's schema is filled with rpm's rules, so
//! `rpm -qa/-qi/-qf/--whatprovides/-V` work.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use super::InstallError;
use super::package::Pkg;
use super::rawheader::RawHeader;
use super::safepath;

/// rpm's own DDL (from `rpm --initdb`, rpm 4.18), table by table.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS 'Name' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Name_key_idx' ON 'Name'(key ASC);
CREATE TABLE IF NOT EXISTS 'Basenames' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Basenames_key_idx' ON 'Basenames'(key ASC);
CREATE INDEX IF NOT EXISTS 'Basenames_hnum_idx' ON 'Basenames'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Group' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Group_key_idx' ON 'Group'(key ASC);
CREATE TABLE IF NOT EXISTS 'Requirename' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Requirename_key_idx' ON 'Requirename'(key ASC);
CREATE INDEX IF NOT EXISTS 'Requirename_hnum_idx' ON 'Requirename'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Providename' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Providename_key_idx' ON 'Providename'(key ASC);
CREATE INDEX IF NOT EXISTS 'Providename_hnum_idx' ON 'Providename'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Conflictname' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Conflictname_key_idx' ON 'Conflictname'(key ASC);
CREATE INDEX IF NOT EXISTS 'Conflictname_hnum_idx' ON 'Conflictname'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Obsoletename' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Obsoletename_key_idx' ON 'Obsoletename'(key ASC);
CREATE INDEX IF NOT EXISTS 'Obsoletename_hnum_idx' ON 'Obsoletename'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Triggername' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Triggername_key_idx' ON 'Triggername'(key ASC);
CREATE INDEX IF NOT EXISTS 'Triggername_hnum_idx' ON 'Triggername'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Dirnames' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Dirnames_key_idx' ON 'Dirnames'(key ASC);
CREATE INDEX IF NOT EXISTS 'Dirnames_hnum_idx' ON 'Dirnames'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Installtid' (key 'BLOB' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE TABLE IF NOT EXISTS 'Sigmd5' (key 'BLOB' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE TABLE IF NOT EXISTS 'Sha1header' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Sha1header_key_idx' ON 'Sha1header'(key ASC);
CREATE TABLE IF NOT EXISTS 'Filetriggername' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Filetriggername_key_idx' ON 'Filetriggername'(key ASC);
CREATE INDEX IF NOT EXISTS 'Filetriggername_hnum_idx' ON 'Filetriggername'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Transfiletriggername' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Transfiletriggername_key_idx' ON 'Transfiletriggername'(key ASC);
CREATE INDEX IF NOT EXISTS 'Transfiletriggername_hnum_idx' ON 'Transfiletriggername'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Recommendname' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Recommendname_key_idx' ON 'Recommendname'(key ASC);
CREATE INDEX IF NOT EXISTS 'Recommendname_hnum_idx' ON 'Recommendname'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Suggestname' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Suggestname_key_idx' ON 'Suggestname'(key ASC);
CREATE INDEX IF NOT EXISTS 'Suggestname_hnum_idx' ON 'Suggestname'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Supplementname' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Supplementname_key_idx' ON 'Supplementname'(key ASC);
CREATE INDEX IF NOT EXISTS 'Supplementname_hnum_idx' ON 'Supplementname'(hnum ASC);
CREATE TABLE IF NOT EXISTS 'Enhancename' (key 'TEXT' NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, FOREIGN KEY (hnum) REFERENCES 'Packages'(hnum));
CREATE INDEX IF NOT EXISTS 'Enhancename_key_idx' ON 'Enhancename'(key ASC);
CREATE INDEX IF NOT EXISTS 'Enhancename_hnum_idx' ON 'Enhancename'(hnum ASC);
"#;

/// String-array index tables: (table, tag, dedupe repeated keys within one header).
const STRING_INDEXES: [(&str, u32, bool); 13] = [
    ("Name", 1000, false),
    ("Group", 1016, false),
    ("Basenames", 1117, false),
    ("Dirnames", 1118, false),
    ("Providename", 1047, false),
    ("Conflictname", 1054, false),
    ("Obsoletename", 1090, false),
    ("Triggername", 1066, true),
    ("Filetriggername", 5069, true),
    ("Transfiletriggername", 5079, true),
    ("Recommendname", 5046, false),
    ("Suggestname", 5049, false),
    ("Supplementname", 5052, false),
];
const ENHANCENAME: u32 = 5055;
const REQUIRENAME: u32 = 1049;
const REQUIREFLAGS: u32 = 1048;

// RPMSENSE bits deciding which Requires are indexed (rpm's isInstallPreReq/isErasePreReq).
const INSTALL_ONLY: u32 = (1 << 9) | (1 << 10) | (1 << 24) | (1 << 26) | (1 << 7) | (1 << 5);
const ERASE_ONLY: u32 = (1 << 11) | (1 << 12);

/// The rpmdb directory (root-relative): the caller's choice, else `/usr/lib/sysimage/rpm` when
/// the image has it (or a package ships it), else `/var/lib/rpm`.
pub fn detect_dbpath(root: &Path, choice: Option<&str>, pkgs: &[Pkg]) -> String {
    if let Some(c) = choice {
        return c.trim_matches('/').to_string();
    }
    let sysimage = "usr/lib/sysimage/rpm";
    let on_disk = safepath::resolve(root, sysimage, true)
        .map(|p| p.is_dir())
        .unwrap_or(false);
    if on_disk
        || pkgs
            .iter()
            .any(|p| p.index.contains_key("/usr/lib/sysimage/rpm"))
    {
        sysimage.to_string()
    } else {
        "var/lib/rpm".to_string()
    }
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> InstallError + '_ {
    move |e| InstallError::Rpmdb {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn db_file(root: &Path, dbpath: &str) -> std::io::Result<PathBuf> {
    Ok(safepath::resolve(root, dbpath, true)?.join("rpmdb.sqlite"))
}

/// Open (creating the schema) the rpmdb of `root`.
pub fn open(root: &Path, dbpath: &str) -> Result<(Connection, PathBuf), InstallError> {
    let mut created = Vec::new();
    let dir =
        safepath::ensure_dir(root, dbpath, &mut created).map_err(|source| InstallError::Io {
            path: root.join(dbpath),
            source,
        })?;
    let file = dir.join("rpmdb.sqlite");
    let conn = Connection::open(&file).map_err(db_err(&file))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db_err(&file))?;
    conn.execute_batch(SCHEMA).map_err(db_err(&file))?;
    let lock = dir.join(".rpm.lock");
    if !lock.exists() {
        std::fs::write(&lock, b"").map_err(|source| InstallError::Io {
            path: lock.clone(),
            source,
        })?;
    }
    Ok((conn, file))
}

/// True when the image already has an rpmdb at `dbpath`.
pub fn exists(root: &Path, dbpath: &str) -> bool {
    db_file(root, dbpath).map(|f| f.exists()).unwrap_or(false)
}

/// Installed instance count per package name (empty when there is no database yet).
pub fn installed_counts(root: &Path, dbpath: &str) -> Result<HashMap<String, usize>, InstallError> {
    let mut m = HashMap::new();
    let file = db_file(root, dbpath).map_err(|source| InstallError::Io {
        path: root.join(dbpath),
        source,
    })?;
    if !file.exists() {
        return Ok(m);
    }
    let conn = Connection::open(&file).map_err(db_err(&file))?;
    let mut st = conn
        .prepare("SELECT key FROM Name")
        .map_err(db_err(&file))?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db_err(&file))?;
    for r in rows {
        *m.entry(r.map_err(db_err(&file))?).or_default() += 1;
    }
    Ok(m)
}

/// Append `(tag, type, count, bytes)` entries after the immutable region of `header` (file
/// form), the way rpm stores an installed header.
fn build_blob(
    header_file_form: &[u8],
    sig_file_form: &[u8],
    extra: Vec<(u32, u32, usize, Vec<u8>)>,
) -> Option<Vec<u8>> {
    let h = RawHeader::parse_file(header_file_form)?;
    let sig = RawHeader::parse_file(sig_file_form)?;
    let mut add: Vec<(u32, u32, usize, Vec<u8>)> = Vec::new();
    // Legacy signature tags merged into the header (rpm's headerMergeLegacySigs).
    for e in &sig.entries {
        let tag = match e.tag {
            1000 => 257,
            1002 => 259,
            1004 => 261,
            1005 => 262,
            1007 => 1046,
            274 => 5090,
            275 => 5091,
            t if (256..1000).contains(&t) && t != 276 && t != 277 => t,
            _ => continue,
        };
        if h.entry(tag).is_some() || add.iter().any(|a| a.0 == tag) {
            continue;
        }
        add.push((tag, e.ty, e.count, sig.bytes(e)?.to_vec()));
    }
    for x in extra {
        if h.entry(x.0).is_none() {
            add.push(x);
        }
    }
    add.sort_by_key(|a| a.0);
    let mut data = h.data.to_vec();
    let mut index = h.index_bytes.to_vec();
    for (tag, ty, count, bytes) in add {
        let align = match ty {
            3 => 2,
            4 => 4,
            5 => 8,
            _ => 1,
        };
        while data.len() % align != 0 {
            data.push(0);
        }
        for v in [tag, ty, data.len() as u32, count as u32] {
            index.extend_from_slice(&v.to_be_bytes());
        }
        data.extend_from_slice(&bytes);
    }
    let mut blob = Vec::with_capacity(8 + index.len() + data.len());
    blob.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
    blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
    blob.extend_from_slice(&index);
    blob.extend_from_slice(&data);
    Some(blob)
}

fn be_u32s(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// Add `pkgs` to the rpmdb of `root` (one sqlite transaction).
pub fn add_packages(root: &Path, dbpath: &str, pkgs: &[&Pkg]) -> Result<(), InstallError> {
    let (mut conn, file) = open(root, dbpath)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0);
    let tid = now;
    let tx = conn.transaction().map_err(db_err(&file))?;
    for p in pkgs {
        let bad = |m: &str| InstallError::Rpmdb {
            path: file.clone(),
            message: format!("{}: {m}", p.rpm.path.display()),
        };
        let h =
            RawHeader::parse_file(&p.rpm.header_blob).ok_or_else(|| bad("unreadable header"))?;
        let nfiles = h.strings(1117).len();
        let mut extra = vec![
            (1008, 4, 1, be_u32s(&[now])),
            (1127, 4, 1, be_u32s(&[3])),
            (1128, 4, 1, be_u32s(&[tid])),
        ];
        if nfiles > 0 {
            extra.push((1029, 1, nfiles, vec![0u8; nfiles]));
        }
        let prefixes = h.strings(1098);
        if !prefixes.is_empty() {
            let mut b = Vec::new();
            for s in &prefixes {
                b.extend_from_slice(s.as_bytes());
                b.push(0);
            }
            extra.push((1099, 8, prefixes.len(), b));
        }
        let blob = build_blob(&p.rpm.header_blob, &p.rpm.sig_blob, extra)
            .ok_or_else(|| bad("malformed header index"))?;
        tx.execute("INSERT INTO Packages (blob) VALUES (?1)", params![blob])
            .map_err(db_err(&file))?;
        let hnum = tx.last_insert_rowid();
        let stored = RawHeader::parse(&blob).ok_or_else(|| bad("built an unreadable header"))?;
        index_header(&tx, &file, hnum, &stored)?;
    }
    tx.commit().map_err(db_err(&file))?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").ok();
    Ok(())
}

fn index_header(
    tx: &rusqlite::Transaction<'_>,
    file: &Path,
    hnum: i64,
    h: &RawHeader<'_>,
) -> Result<(), InstallError> {
    let put = |table: &str, key: &dyn rusqlite::ToSql, idx: usize| -> Result<(), InstallError> {
        tx.execute(
            &format!("INSERT INTO '{table}' (key, hnum, idx) VALUES (?1, ?2, ?3)"),
            params![key, hnum, idx as i64],
        )
        .map(|_| ())
        .map_err(db_err(file))
    };
    let mut tables: Vec<(&str, u32, bool)> = STRING_INDEXES.to_vec();
    tables.push(("Enhancename", ENHANCENAME, false));
    for (table, tag, dedupe) in tables {
        let vals = h.strings(tag);
        for (i, v) in vals.iter().enumerate() {
            if dedupe && vals[..i].contains(v) {
                continue;
            }
            put(table, v, i)?;
        }
    }
    let req = h.strings(REQUIRENAME);
    let flags = h.u32s(REQUIREFLAGS);
    for (i, r) in req.iter().enumerate() {
        let f = flags.get(i).copied().unwrap_or(0) & !(1 << 6);
        if f & INSTALL_ONLY != 0 && f & ERASE_ONLY == 0 {
            continue;
        }
        put("Requirename", r, i)?;
    }
    if let Some(tid) = h.u32s(1128).first() {
        put("Installtid", &tid.to_le_bytes().to_vec(), 0)?;
    }
    if let Some(e) = h.entry(261)
        && let Some(b) = h.bytes(&e)
    {
        put("Sigmd5", &b.to_vec(), 0)?;
    }
    if let Some(s) = h.strings(269).first() {
        put("Sha1header", s, 0)?;
    }
    Ok(())
}

/// An installed package read back from the rpmdb.
pub struct Installed {
    /// Row number.
    pub hnum: i64,
    /// The stored header blob.
    pub blob: Vec<u8>,
}

/// Installed headers whose name is `name`.
pub fn find_by_name(root: &Path, dbpath: &str, name: &str) -> Result<Vec<Installed>, InstallError> {
    let (conn, file) = open(root, dbpath)?;
    let mut st = conn
        .prepare(
            "SELECT p.hnum, p.blob FROM Packages p JOIN Name n ON n.hnum = p.hnum WHERE n.key = ?1",
        )
        .map_err(db_err(&file))?;
    let rows = st
        .query_map(params![name], |r| {
            Ok(Installed {
                hnum: r.get(0)?,
                blob: r.get(1)?,
            })
        })
        .map_err(db_err(&file))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err(&file))
}

/// All installed headers.
pub fn all_installed(root: &Path, dbpath: &str) -> Result<Vec<Installed>, InstallError> {
    let (conn, file) = open(root, dbpath)?;
    let mut st = conn
        .prepare("SELECT hnum, blob FROM Packages")
        .map_err(db_err(&file))?;
    let rows = st
        .query_map([], |r| {
            Ok(Installed {
                hnum: r.get(0)?,
                blob: r.get(1)?,
            })
        })
        .map_err(db_err(&file))?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err(&file))
}

/// Remove the package rows `hnum` and their index entries.
pub fn remove(root: &Path, dbpath: &str, hnums: &[i64]) -> Result<(), InstallError> {
    let (mut conn, file) = open(root, dbpath)?;
    let tx = conn.transaction().map_err(db_err(&file))?;
    let mut tables: Vec<&str> = STRING_INDEXES.iter().map(|t| t.0).collect();
    tables.extend([
        "Enhancename",
        "Requirename",
        "Installtid",
        "Sigmd5",
        "Sha1header",
    ]);
    for h in hnums {
        for t in &tables {
            tx.execute(&format!("DELETE FROM '{t}' WHERE hnum = ?1"), params![h])
                .map_err(db_err(&file))?;
        }
        tx.execute("DELETE FROM Packages WHERE hnum = ?1", params![h])
            .map_err(db_err(&file))?;
    }
    tx.commit().map_err(db_err(&file))?;
    conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").ok();
    Ok(())
}
