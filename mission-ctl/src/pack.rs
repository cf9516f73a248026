//! `mission-ctl pack`: share what was learned. Directives, compliance packs, a price table and
//! the anomaly models' learned baselines travel as one versioned file (a *pack*) with a
//! SHA-256 manifest and an optional ed25519 signature; `import` checks all of it before it
//! writes anything.
//!
//! # The file
//!
//! One JSON document (`format` = [`FORMAT`]):
//!
//! ```text
//! { "format": "mission-control-pack",
//!   "manifest": "<the manifest, as JSON text: the exact bytes the signature covers>",
//!   "signature": { "algorithm": "ed25519", "public_key": "<hex>", "value": "<hex>" },  // optional
//!   "entries": [ { "path": "directives/slo.toml", "data": "<base64>" }, … ] }
//! ```
//!
//! The [`Manifest`] names the pack format version ([`FORMAT_VERSION`]), when and where
//! (`source`) the pack was made, the tenant it was exported for (if any) and every entry with
//! its kind, size and SHA-256. The signature is over [`SIGNATURE_CONTEXT`] followed by the
//! manifest text, so it covers every entry through its digest.
//!
//! Entries by path: `directives/<name>.toml|json` (a directive file), `compliance/<name>.toml|json`
//! (a compliance pack), `prices.toml|json` (a price table), `models/baseline.json` (the
//! detectors' learned state per stream, see `mission_sdk::ModelBaseline`).
//!
//! # Untrusted input
//!
//! A pack is at most [`MAX_PACK_BYTES`], with at most [`MAX_ENTRIES`] entries of at most
//! [`MAX_ENTRY_BYTES`] each, checked before anything is decoded. Paths are checked against the
//! layout above (no `..`, no hidden names). A damaged pack — bad JSON, a digest or size that
//! does not match, an entry missing from the manifest or the manifest naming one that is
//! missing, a signature that does not verify, a signer not trusted — is a typed [`PackError`]
//! and nothing is imported: entries are written to a staging directory, each is read back as
//! an agent would read it, and only then moved into place.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The `format` of a pack file.
pub const FORMAT: &str = "mission-control-pack";
/// The manifest's format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What an ed25519 signature of a pack signs, before the manifest text (so a signature of
/// anything else never verifies as a pack's).
pub const SIGNATURE_CONTEXT: &[u8] = b"mission-control-pack v1\n";
/// The largest pack file read: 384 MiB.
pub const MAX_PACK_BYTES: u64 = 384 << 20;
/// The largest entry, decoded: 256 MiB (the largest model baseline the SDK reads).
pub const MAX_ENTRY_BYTES: u64 = 256 << 20;
/// The most entries in a pack.
pub const MAX_ENTRIES: usize = 1024;
/// Where, under `--into`, import writes the manifest it imported (with the signer).
pub const IMPORTED_MANIFEST: &str = "pack.json";
/// The baseline entry's path.
pub const BASELINE_PATH: &str = "models/baseline.json";

/// What can go wrong making, reading or importing a pack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Something is larger than its limit.
    #[error("{what} is {bytes} bytes, more than the {limit} allowed")]
    TooLarge {
        /// What.
        what: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// Too many entries.
    #[error("the pack has {0} entries, more than the {MAX_ENTRIES} allowed")]
    TooManyEntries(usize),
    /// Not a pack: bad JSON, a missing field, bad base64 or hex.
    #[error("not a valid pack: {0}")]
    Malformed(String),
    /// A pack of a format version this build does not read.
    #[error(
        "pack format version {found} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    Version {
        /// The version the manifest says.
        found: u32,
    },
    /// An entry's path is not one of the layout's.
    #[error("entry {path:?}: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// An entry's bytes do not have the digest the manifest lists.
    #[error(
        "entry {path}: SHA-256 {actual} does not match the manifest's {expected}: the pack was changed or damaged"
    )]
    Digest {
        /// The entry.
        path: String,
        /// The manifest's digest.
        expected: String,
        /// The digest of the bytes in the pack.
        actual: String,
    },
    /// An entry's size does not match the manifest's.
    #[error("entry {path}: {actual} bytes, the manifest says {expected}")]
    Size {
        /// The entry.
        path: String,
        /// The manifest's size.
        expected: u64,
        /// The size in the pack.
        actual: u64,
    },
    /// The manifest lists an entry the pack does not hold.
    #[error("entry {0} is in the manifest but not in the pack")]
    Missing(String),
    /// The pack holds an entry the manifest does not list (or holds one twice).
    #[error("entry {0} is not in the manifest (or is in the pack twice)")]
    Unlisted(String),
    /// The signature does not verify with the key it names.
    #[error(
        "the signature does not verify (signer {signer}): the manifest was changed or the signature damaged"
    )]
    BadSignature {
        /// The public key the pack names, hex.
        signer: String,
    },
    /// Signed by a key that is not among `--trust`.
    #[error("the pack is signed by {signer}, which is not a trusted key (--trust)")]
    Untrusted {
        /// The public key the pack names, hex.
        signer: String,
    },
    /// `--trust` was given and the pack is not signed.
    #[error("the pack is not signed, and --trust asks for a signature")]
    Unsigned,
    /// An entry's content is not what its kind must be (a directive file that does not parse…).
    #[error("entry {path}: {message}")]
    Entry {
        /// The entry.
        path: String,
        /// What its reader said.
        message: String,
    },
    /// A key file or public key that cannot be used.
    #[error("key {origin}: {message}")]
    Key {
        /// The file or argument.
        origin: String,
        /// Why.
        message: String,
    },
    /// Arguments that make no pack (nothing to export, two entries of one name…).
    #[error("{0}")]
    Usage(String),
}

impl PackError {
    /// The exit code of `mission-ctl pack`: 2 for bad arguments or keys, 3 for a file that
    /// could not be read or written, 1 for a pack that fails its checks.
    pub fn exit_code(&self) -> u8 {
        match self {
            PackError::Usage(_) | PackError::Key { .. } => 2,
            PackError::Io { .. } => 3,
            _ => 1,
        }
    }
}

/// What a pack holds, and what vouches for it: the part the signature covers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The pack format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the pack was made (RFC 3339, UTC).
    pub created: String,
    /// Where it was made (`--source`, default the host name).
    pub source: String,
    /// The tenant whose baselines it holds, when exported with `--tenant`.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Every entry, in the order of the pack.
    pub entries: Vec<ManifestEntry>,
}

/// One entry of a [`Manifest`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Its path in the pack (and under `--into` on import).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size, bytes.
    pub bytes: u64,
    /// The SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// The kinds of entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A directive file (TOML or JSON).
    Directives,
    /// A compliance pack (TOML or JSON).
    Compliance,
    /// A price table (TOML or JSON).
    Prices,
    /// The anomaly detectors' learned state per stream.
    Baseline,
}

impl EntryKind {
    fn name(self) -> &'static str {
        match self {
            EntryKind::Directives => "directives",
            EntryKind::Compliance => "compliance",
            EntryKind::Prices => "prices",
            EntryKind::Baseline => "baseline",
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    format: String,
    manifest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<SignatureField>,
    entries: Vec<EntryField>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureField {
    algorithm: String,
    public_key: String,
    value: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryField {
    path: String,
    data: String,
}

/// One entry to pack, or one read from a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its path (see the [module docs](self) for the layout).
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// A pack read and checked by [`open_pack`].
#[derive(Debug)]
pub struct OpenedPack {
    /// The manifest.
    pub manifest: Manifest,
    /// The signer's public key (hex), when the pack is signed (verified); `trusted` says whether
    /// it is one of the keys asked for.
    pub signer: Option<String>,
    /// Whether the signer is among the trusted keys.
    pub trusted: bool,
    /// The entries, digests checked.
    pub entries: Vec<Entry>,
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Checks an entry's path against the layout and its kind; the reason when it does not fit.
fn check_path(path: &str, kind: EntryKind) -> Result<(), PackError> {
    let bad = |reason: &str| PackError::BadPath { path: path.to_owned(), reason: reason.into() };
    let name_ok = |name: &str| {
        !name.is_empty()
            && name.len() <= 128
            && !name.starts_with('.')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            && (name.ends_with(".toml") || name.ends_with(".json"))
    };
    let fits = match kind {
        EntryKind::Directives => path.strip_prefix("directives/").is_some_and(name_ok),
        EntryKind::Compliance => path.strip_prefix("compliance/").is_some_and(name_ok),
        EntryKind::Prices => path == "prices.toml" || path == "prices.json",
        EntryKind::Baseline => path == BASELINE_PATH,
    };
    if fits {
        Ok(())
    } else {
        Err(bad(&format!(
            "not a path of a {} entry (directives/<name>.toml|json, compliance/<name>.toml|json, \
             prices.toml|json, {BASELINE_PATH}; names of letters, digits, '.', '_', '-')",
            kind.name()
        )))
    }
}

/// Makes a pack file's bytes from `entries`, signed with `key` when given.
///
/// # Errors
/// [`PackError::BadPath`] for an entry outside the layout, [`PackError::Usage`] for none or two
/// of one path, [`PackError::TooLarge`] / [`PackError::TooManyEntries`] past the limits.
pub fn make_pack(
    entries: &[Entry],
    created: String,
    source: String,
    tenant: Option<String>,
    key: Option<&SigningKey>,
) -> Result<Vec<u8>, PackError> {
    if entries.is_empty() {
        return Err(PackError::Usage(
            "nothing to pack: name directives, compliance packs, prices or a baseline".into(),
        ));
    }
    if entries.len() > MAX_ENTRIES {
        return Err(PackError::TooManyEntries(entries.len()));
    }
    let mut seen = BTreeSet::new();
    for e in entries {
        check_path(&e.path, e.kind)?;
        if !seen.insert(e.path.as_str()) {
            return Err(PackError::Usage(format!("two entries would be {}: rename one", e.path)));
        }
        if e.data.len() as u64 > MAX_ENTRY_BYTES {
            return Err(PackError::TooLarge {
                what: e.path.clone(),
                bytes: e.data.len() as u64,
                limit: MAX_ENTRY_BYTES,
            });
        }
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        created,
        source,
        tenant,
        entries: entries
            .iter()
            .map(|e| ManifestEntry {
                path: e.path.clone(),
                kind: e.kind,
                bytes: e.data.len() as u64,
                sha256: sha256_hex(&e.data),
            })
            .collect(),
    };
    let manifest =
        serde_json::to_string(&manifest).map_err(|e| PackError::Malformed(e.to_string()))?;
    let signature = key.map(|key| {
        let mut message = SIGNATURE_CONTEXT.to_vec();
        message.extend_from_slice(manifest.as_bytes());
        SignatureField {
            algorithm: "ed25519".into(),
            public_key: hex(key.verifying_key().as_bytes()),
            value: hex(&key.sign(&message).to_bytes()),
        }
    });
    let b64 = base64::engine::general_purpose::STANDARD;
    let file = PackFile {
        format: FORMAT.into(),
        manifest,
        signature,
        entries: entries
            .iter()
            .map(|e| EntryField { path: e.path.clone(), data: b64.encode(&e.data) })
            .collect(),
    };
    let bytes =
        serde_json::to_vec_pretty(&file).map_err(|e| PackError::Malformed(e.to_string()))?;
    if bytes.len() as u64 > MAX_PACK_BYTES {
        return Err(PackError::TooLarge {
            what: "the pack".into(),
            bytes: bytes.len() as u64,
            limit: MAX_PACK_BYTES,
        });
    }
    Ok(bytes)
}

/// Reads a pack file's bytes and checks everything: format and version, the signature (when
/// there is one; with `trust` non-empty, one is required and its key must be among `trust`),
/// and every entry against the manifest (set, size and SHA-256).
///
/// # Errors
/// A [`PackError`] naming the first problem.
pub fn open_pack(bytes: &[u8], trust: &[VerifyingKey]) -> Result<OpenedPack, PackError> {
    if bytes.len() as u64 > MAX_PACK_BYTES {
        return Err(PackError::TooLarge {
            what: "the pack".into(),
            bytes: bytes.len() as u64,
            limit: MAX_PACK_BYTES,
        });
    }
    let file: PackFile =
        serde_json::from_slice(bytes).map_err(|e| PackError::Malformed(e.to_string()))?;
    if file.format != FORMAT {
        return Err(PackError::Malformed(format!(
            "format {:?}, expected {FORMAT:?}",
            file.format.chars().take(64).collect::<String>()
        )));
    }
    // The version first, with nothing else assumed of the manifest's shape.
    let version = serde_json::from_str::<serde_json::Value>(&file.manifest)
        .map_err(|e| PackError::Malformed(format!("manifest: {e}")))?
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| PackError::Malformed("manifest: no format_version".into()))?;
    if version != u64::from(FORMAT_VERSION) {
        return Err(PackError::Version { found: u32::try_from(version).unwrap_or(u32::MAX) });
    }
    let manifest: Manifest = serde_json::from_str(&file.manifest)
        .map_err(|e| PackError::Malformed(format!("manifest: {e}")))?;
    // The signature covers the manifest; checked before anything it vouches for.
    let signer = match &file.signature {
        Some(sig) => {
            if sig.algorithm != "ed25519" {
                return Err(PackError::Malformed(format!(
                    "signature algorithm {:?}, expected \"ed25519\"",
                    sig.algorithm.chars().take(32).collect::<String>()
                )));
            }
            let key = unhex::<32>(&sig.public_key)
                .and_then(|k| VerifyingKey::from_bytes(&k).ok())
                .ok_or_else(|| PackError::Malformed("signature: bad public key".into()))?;
            let value = unhex::<64>(&sig.value)
                .ok_or_else(|| PackError::Malformed("signature: bad value".into()))?;
            let signature = ed25519_dalek::Signature::from_bytes(&value);
            let mut message = SIGNATURE_CONTEXT.to_vec();
            message.extend_from_slice(file.manifest.as_bytes());
            let signer = hex(key.as_bytes());
            key.verify_strict(&message, &signature)
                .map_err(|_| PackError::BadSignature { signer: signer.clone() })?;
            Some((key, signer))
        }
        None => None,
    };
    let trusted = match &signer {
        Some((key, _)) => trust.contains(key),
        None => false,
    };
    if !trust.is_empty() {
        match &signer {
            None => return Err(PackError::Unsigned),
            Some((_, hex)) if !trusted => return Err(PackError::Untrusted { signer: hex.clone() }),
            Some(_) => {}
        }
    }
    if manifest.entries.len() > MAX_ENTRIES || file.entries.len() > MAX_ENTRIES {
        return Err(PackError::TooManyEntries(manifest.entries.len().max(file.entries.len())));
    }
    let mut listed = BTreeSet::new();
    for m in &manifest.entries {
        check_path(&m.path, m.kind)?;
        if !listed.insert(m.path.as_str()) {
            return Err(PackError::Malformed(format!("manifest lists {} twice", m.path)));
        }
        if m.bytes > MAX_ENTRY_BYTES {
            return Err(PackError::TooLarge {
                what: m.path.clone(),
                bytes: m.bytes,
                limit: MAX_ENTRY_BYTES,
            });
        }
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut entries = Vec::with_capacity(manifest.entries.len());
    let mut held = BTreeSet::new();
    for e in &file.entries {
        let Some(m) = manifest.entries.iter().find(|m| m.path == e.path) else {
            return Err(PackError::Unlisted(e.path.chars().take(200).collect()));
        };
        if !held.insert(e.path.as_str()) {
            return Err(PackError::Unlisted(e.path.clone()));
        }
        // Base64 is 4 characters per 3 bytes: refuse before decoding what cannot fit.
        if e.data.len() as u64 > m.bytes.div_ceil(3) * 4 + 4 {
            return Err(PackError::Size {
                path: e.path.clone(),
                expected: m.bytes,
                actual: e.data.len() as u64 / 4 * 3,
            });
        }
        let data = b64
            .decode(e.data.as_bytes())
            .map_err(|err| PackError::Malformed(format!("entry {}: {err}", e.path)))?;
        if data.len() as u64 != m.bytes {
            return Err(PackError::Size {
                path: e.path.clone(),
                expected: m.bytes,
                actual: data.len() as u64,
            });
        }
        let actual = sha256_hex(&data);
        if actual != m.sha256.to_ascii_lowercase() {
            return Err(PackError::Digest {
                path: e.path.clone(),
                expected: m.sha256.clone(),
                actual,
            });
        }
        entries.push(Entry { path: e.path.clone(), kind: m.kind, data });
    }
    if let Some(missing) = manifest.entries.iter().find(|m| !held.contains(m.path.as_str())) {
        return Err(PackError::Missing(missing.path.clone()));
    }
    Ok(OpenedPack { manifest, signer: signer.map(|(_, hex)| hex), trusted, entries })
}

/// Reads an ed25519 signing key file: the 32-byte secret seed as 64 hex digits (what
/// `mission-ctl pack keygen` writes).
///
/// # Errors
/// [`PackError::Key`] naming the file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, PackError> {
    let key = |message: &str| PackError::Key {
        origin: path.display().to_string(),
        message: message.into(),
    };
    let meta = std::fs::metadata(path).map_err(|e| key(&e.to_string()))?;
    if meta.len() > 4096 {
        return Err(key("not a key file (too large)"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| key(&e.to_string()))?;
    let seed = unhex::<32>(&text).ok_or_else(|| {
        key("expected 64 hex digits (an ed25519 secret key, as `pack keygen` writes)")
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A public key given to `--trust`: 64 hex digits, or a file holding them (what
/// `pack keygen` writes next to the secret key, `<KEYFILE>.pub`).
///
/// # Errors
/// [`PackError::Key`] naming the argument.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, PackError> {
    let key =
        |message: String| PackError::Key { origin: text.chars().take(200).collect(), message };
    let hex_text = match unhex::<32>(text) {
        Some(_) => text.to_owned(),
        None => {
            let path = Path::new(text);
            let meta = std::fs::metadata(path)
                .map_err(|e| key(format!("neither 64 hex digits nor a readable file ({e})")))?;
            if meta.len() > 4096 {
                return Err(key("not a public key file (too large)".into()));
            }
            std::fs::read_to_string(path).map_err(|e| key(e.to_string()))?
        }
    };
    let bytes = unhex::<32>(&hex_text)
        .ok_or_else(|| key("expected 64 hex digits (an ed25519 public key)".into()))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| key(format!("not an ed25519 public key: {e}")))
}

/// Arguments of `mission-ctl pack export`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ExportArgs {
    /// The pack file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// A directive file (TOML or JSON) to include; may be repeated.
    #[arg(long)]
    pub directives: Vec<PathBuf>,
    /// A compliance pack to include: a shipped one by name (soc2, hipaa, pci) or a pack file;
    /// may be repeated.
    #[arg(long)]
    pub compliance: Vec<String>,
    /// A price table file (TOML or JSON) to include.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Include the learned model baseline of the agent(s) writing this store
    /// (`<store>/models/state.json`).
    #[arg(long, conflicts_with = "baseline")]
    pub store: Option<PathBuf>,
    /// Include this model state file as the baseline.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Only this tenant's baselines (and the manifest says so).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Where the pack comes from, recorded in the manifest (default: the host name).
    #[arg(long)]
    pub source: Option<String>,
    /// Sign the manifest with this ed25519 key file (`pack keygen` makes one).
    #[arg(long, value_name = "KEYFILE")]
    pub sign: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `mission-ctl pack import`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ImportArgs {
    /// The pack file.
    pub pack: PathBuf,
    /// The directory to write the entries into (created; entries of the same path are
    /// replaced).
    #[arg(long)]
    pub into: PathBuf,
    /// Require a signature by this ed25519 public key (64 hex digits, or a `.pub` file); may
    /// be repeated (any one of them).
    #[arg(long, value_name = "PUBKEY")]
    pub trust: Vec<String>,
    /// Import only this tenant's baselines (the other tenants' streams are skipped, counted).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `mission-ctl pack keygen`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KeygenArgs {
    /// The secret key file to write (refused if it exists); the public key goes to
    /// `<KEYFILE>.pub` and to stdout.
    #[arg(long, value_name = "KEYFILE")]
    pub out: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackError + '_ {
    move |source| PackError::Io { path: path.to_path_buf(), source }
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PackError> {
    let len = std::fs::metadata(path).map_err(io(path))?.len();
    if len > limit {
        return Err(PackError::TooLarge { what: path.display().to_string(), bytes: len, limit });
    }
    std::fs::read(path).map_err(io(path))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn is_json(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "json")
}

/// Checks an entry's content the way an agent reads it (the entry written at `path`).
fn check_content(kind: EntryKind, path: &Path, name: &str) -> Result<(), PackError> {
    let entry = |message: String| PackError::Entry { path: name.to_owned(), message };
    match kind {
        EntryKind::Directives => {
            mission_sdk::DirectiveSet::from_file(path).map(drop).map_err(|e| entry(e.to_string()))
        }
        EntryKind::Compliance => mission_sdk::compliance::CompliancePack::from_file(path)
            .map(drop)
            .map_err(|e| entry(e.to_string())),
        EntryKind::Prices => {
            mission_sdk::PriceTable::from_file(path).map(drop).map_err(|e| entry(e.to_string()))
        }
        EntryKind::Baseline => {
            mission_sdk::ModelBaseline::read(path).map(drop).map_err(|e| entry(e.to_string()))
        }
    }
}

/// The entries `args` name, each read and checked as an agent would read it.
fn collect(args: &ExportArgs) -> Result<Vec<Entry>, PackError> {
    let mut entries = Vec::new();
    let checked = |kind: EntryKind, path: String, data: Vec<u8>, from: &Path| {
        check_path(&path, kind)?;
        check_content(kind, from, &path)?;
        Ok::<Entry, PackError>(Entry { path, kind, data })
    };
    for file in &args.directives {
        if file.to_string_lossy().starts_with("preset:") {
            return Err(PackError::Usage(format!(
                "{}: presets ship with every agent (name them as they are); pack files only",
                file.display()
            )));
        }
        let data = read_limited(file, MAX_ENTRY_BYTES)?;
        let path = format!("directives/{}", file_name(file));
        entries.push(checked(EntryKind::Directives, path, data, file)?);
    }
    for spec in &args.compliance {
        let path = Path::new(spec);
        if spec.contains('/') || spec.ends_with(".toml") || spec.ends_with(".json") {
            let data = read_limited(path, MAX_ENTRY_BYTES)?;
            let name = format!("compliance/{}", file_name(path));
            entries.push(checked(EntryKind::Compliance, name, data, path)?);
        } else {
            // A shipped pack, written out (as JSON) so the importer needs no preset of that name.
            let pack = mission_sdk::compliance::CompliancePack::preset(spec)
                .map_err(|e| PackError::Usage(e.to_string()))?;
            let text =
                serde_json::to_string_pretty(&pack).map_err(|e| PackError::Usage(e.to_string()))?;
            let name = format!("compliance/{spec}.json");
            check_path(&name, EntryKind::Compliance)?;
            entries.push(Entry {
                path: name,
                kind: EntryKind::Compliance,
                data: text.into_bytes(),
            });
        }
    }
    if let Some(file) = &args.prices {
        let data = read_limited(file, MAX_ENTRY_BYTES)?;
        let name = if is_json(file) { "prices.json" } else { "prices.toml" };
        entries.push(checked(EntryKind::Prices, name.into(), data, file)?);
    }
    let baseline = match (&args.store, &args.baseline) {
        (Some(store), _) => Some(store.join(mission_sdk::MODEL_STATE_FILE)),
        (None, Some(file)) => Some(file.clone()),
        (None, None) => None,
    };
    if let Some(file) = baseline {
        let mut model = mission_sdk::ModelBaseline::read(&file)
            .map_err(|e| PackError::Entry { path: BASELINE_PATH.into(), message: e.to_string() })?;
        if let Some(tenant) = &args.tenant {
            model.retain_tenant(tenant);
        }
        entries.push(Entry {
            path: BASELINE_PATH.into(),
            kind: EntryKind::Baseline,
            data: model.to_json(),
        });
    }
    Ok(entries)
}

fn now_utc() -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    crate::utc(ns)
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `mission-ctl pack export`: writes the pack (atomically) and prints what it holds.
///
/// # Errors
/// A [`PackError`] (see [`PackError::exit_code`]).
pub fn run_pack_export(args: &ExportArgs, out: &mut dyn Write) -> Result<Manifest, PackError> {
    let key = args.sign.as_deref().map(read_signing_key).transpose()?;
    let entries = collect(args)?;
    let source = args.source.clone().unwrap_or_else(host_name);
    let bytes = make_pack(&entries, now_utc(), source, args.tenant.clone(), key.as_ref())?;
    mission_store::atomic::replace_file(&args.out, &bytes).map_err(io(&args.out))?;
    let opened = open_pack(&bytes, &[])?;
    let stdout = |e: std::io::Error| PackError::Io { path: "stdout".into(), source: e };
    if args.json {
        let report = serde_json::json!({
            "pack": args.out,
            "manifest": opened.manifest,
            "signer": opened.signer,
        });
        writeln!(out, "{report}").map_err(stdout)?;
    } else {
        writeln!(out, "wrote {} ({} bytes)", args.out.display(), bytes.len()).map_err(stdout)?;
        for e in &opened.manifest.entries {
            writeln!(
                out,
                "  {:<11} {}  {} bytes  sha256 {}",
                e.kind.name(),
                e.path,
                e.bytes,
                e.sha256
            )
            .map_err(stdout)?;
        }
        if let Some(signer) = &opened.signer {
            writeln!(out, "signed by {signer}").map_err(stdout)?;
        }
    }
    Ok(opened.manifest)
}

/// What [`run_pack_import`] did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// The files written, under `--into`.
    pub written: Vec<PathBuf>,
    /// The signer (hex public key), when the pack is signed.
    pub signer: Option<String>,
    /// Whether the signer is among `--trust`.
    pub trusted: bool,
    /// Baseline streams imported.
    pub baseline_streams: usize,
    /// Baseline streams of other tenants, skipped (`--tenant`).
    pub skipped_streams: usize,
    /// The manifest.
    pub manifest: Manifest,
}

/// `mission-ctl pack import`: checks the pack (digests, signature, trust), reads every entry
/// back as an agent would, and only then writes them under `--into`; prints what it wrote and
/// how an agent uses it.
///
/// # Errors
/// A [`PackError`]; nothing is written then.
pub fn run_pack_import(args: &ImportArgs, out: &mut dyn Write) -> Result<ImportReport, PackError> {
    let trust = args.trust.iter().map(|t| parse_public_key(t)).collect::<Result<Vec<_>, _>>()?;
    let bytes = read_limited(&args.pack, MAX_PACK_BYTES)?;
    let mut pack = open_pack(&bytes, &trust)?;
    let (mut baseline_streams, mut skipped_streams) = (0, 0);
    for entry in &mut pack.entries {
        if entry.kind != EntryKind::Baseline {
            continue;
        }
        let mut model = mission_sdk::ModelBaseline::from_json(&entry.data)
            .map_err(|e| PackError::Entry { path: entry.path.clone(), message: e.to_string() })?;
        if let Some(tenant) = &args.tenant {
            skipped_streams = model.retain_tenant(tenant);
            entry.data = model.to_json();
        }
        baseline_streams = model.streams();
    }
    // Staged inside the target (same file system, so moving into place is a rename), read
    // back as an agent reads them, then moved.
    std::fs::create_dir_all(&args.into).map_err(io(&args.into))?;
    let staging = args.into.join(format!(".pack-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let staged = stage(&pack, &staging);
    let result = staged.and_then(|()| commit(&pack, &staging, &args.into));
    let _ = std::fs::remove_dir_all(&staging);
    let written = result?;
    let report = ImportReport {
        written,
        signer: pack.signer.clone(),
        trusted: pack.trusted,
        baseline_streams,
        skipped_streams,
        manifest: pack.manifest,
    };
    let record = serde_json::json!({
        "imported": now_utc(),
        "from": args.pack,
        "signer": report.signer,
        "trusted": report.trusted,
        "tenant": args.tenant,
        "manifest": report.manifest,
    });
    let record_path = args.into.join(IMPORTED_MANIFEST);
    mission_store::atomic::replace_file(&record_path, record.to_string().as_bytes())
        .map_err(io(&record_path))?;
    print_import(&report, args, out)
        .map_err(|source| PackError::Io { path: "stdout".into(), source })?;
    Ok(report)
}

fn stage(pack: &OpenedPack, staging: &Path) -> Result<(), PackError> {
    for entry in &pack.entries {
        let path = staging.join(&entry.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::write(&path, &entry.data).map_err(io(&path))?;
        check_content(entry.kind, &path, &entry.path)?;
    }
    Ok(())
}

fn commit(pack: &OpenedPack, staging: &Path, into: &Path) -> Result<Vec<PathBuf>, PackError> {
    let mut written = Vec::new();
    for entry in &pack.entries {
        let target = into.join(&entry.path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        std::fs::rename(staging.join(&entry.path), &target).map_err(io(&target))?;
        written.push(target);
    }
    Ok(written)
}

fn print_import(
    report: &ImportReport,
    args: &ImportArgs,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if args.json {
        return writeln!(out, "{}", serde_json::to_string(report).unwrap_or_default());
    }
    let m = &report.manifest;
    writeln!(
        out,
        "imported {} ({} entries; made {} on {}{})",
        args.pack.display(),
        m.entries.len(),
        m.created,
        m.source,
        m.tenant.as_deref().map(|t| format!(", tenant {t}")).unwrap_or_default()
    )?;
    match (&report.signer, report.trusted) {
        (Some(signer), true) => writeln!(out, "signature: verified, trusted key {signer}")?,
        (Some(signer), false) => writeln!(
            out,
            "signature: consistent, by {signer} (not checked against a trusted key: pass --trust)"
        )?,
        (None, _) => writeln!(out, "signature: none (unsigned pack)")?,
    }
    for (entry, path) in m.entries.iter().zip(&report.written) {
        writeln!(out, "  {:<11} {}", entry.kind.name(), path.display())?;
    }
    if report.skipped_streams > 0 {
        writeln!(
            out,
            "baseline: {} streams imported, {} of other tenants skipped",
            report.baseline_streams, report.skipped_streams
        )?;
    }
    writeln!(out, "use them in an agent:")?;
    for (entry, path) in m.entries.iter().zip(&report.written) {
        let p = path.display();
        match entry.kind {
            EntryKind::Directives => writeln!(out, "  MISSION_DIRECTIVES={p}")?,
            EntryKind::Compliance => writeln!(out, "  MISSION_COMPLIANCE={p}")?,
            EntryKind::Prices => writeln!(out, "  MISSION_PRICES_FILE={p}")?,
            EntryKind::Baseline => writeln!(out, "  MISSION_MODEL_BASELINE={p}")?,
        }
    }
    Ok(())
}

/// `mission-ctl pack keygen`: a new ed25519 key pair from the operating system's random
/// source; the secret key file is created with mode 0600 and never overwritten.
///
/// # Errors
/// [`PackError::Io`] when the file exists or cannot be written; [`PackError::Key`] when the
/// random source fails.
pub fn run_pack_keygen(args: &KeygenArgs, out: &mut dyn Write) -> Result<String, PackError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| PackError::Key {
        origin: "the operating system's random source".into(),
        message: e.to_string(),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let public = hex(key.verifying_key().as_bytes());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&args.out).map_err(io(&args.out))?;
    file.write_all(format!("{}\n", hex(&seed)).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(&args.out))?;
    let mut pub_path = args.out.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    std::fs::write(&pub_path, format!("{public}\n")).map_err(io(&pub_path))?;
    writeln!(out, "{public}").map_err(|source| PackError::Io { path: "stdout".into(), source })?;
    Ok(public)
}
