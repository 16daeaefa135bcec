//! Whether a file or folder may be trusted with native code: what the host
//! loads or runs outside the sandbox (a precompiled module from the cache,
//! the worker executable) must be something nobody else could have written.

use std::fs::Metadata;

/// Whose files may be trusted besides the current user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owners {
    /// The current user only (the cache: the user's own folder).
    User,
    /// The current user, or the system (root): installed programs.
    UserOrRoot,
}

/// `Ok` if the file or folder `metadata` describes belongs to `owners` and
/// nobody else may write to it (Unix; elsewhere, see the callers' docs);
/// otherwise why not, naming it as `what`.
#[cfg(unix)]
pub(crate) fn trusted(metadata: &Metadata, what: &str, owners: Owners) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let owner = metadata.uid();
    if owner != me && !(owners == Owners::UserOrRoot && owner == 0) {
        let or_root = if owners == Owners::UserOrRoot { " nor root" } else { "" };
        return Err(format!("the {what} belongs to user {owner}, not to the current user ({me}){or_root}"));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(format!("other users may write to the {what} (mode {:o})", metadata.mode() & 0o777));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn trusted(_metadata: &Metadata, _what: &str, _owners: Owners) -> Result<(), String> {
    Ok(())
}
