//! Opening `-o FILE` and its journal so that nothing else is written
//! through them.
//!
//! A task granted `--allow-write-dir` over the output's folder can put a
//! symbolic link or a hard link where the output or its journal will be
//! (`results.jsonl -> ../victim`): a run that followed it would empty and
//! rewrite a file outside the grant. So both files are opened without
//! following a final symbolic link (`O_NOFOLLOW` on Unix,
//! `FILE_FLAG_OPEN_REPARSE_POINT` on Windows), checked through the open
//! descriptor (what is written is what was checked), and emptied only once
//! both passed. The checks ([`check`]): a regular file, with one name (no
//! hard link elsewhere), owned by the user; the journal, which `--resume`
//! reads back and trusts, also writable by nobody else (as the module
//! cache, `host/runtime/cache.rs`). Windows gives neither the owner nor,
//! on stable Rust, the number of names: there only links are refused.

use crate::python_tasks::shown;
use anyhow::{Context, Result, bail};
use std::fmt;
use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

/// Which of the two files: the journal is read back, so it is held to more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The results (`-o FILE`).
    Output,
    /// `FILE.journal`.
    Journal,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Output => "output",
            Role::Journal => "journal",
        })
    }
}

/// What a file is opened for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writing afresh: created if missing; emptied by the caller once both
    /// files passed their checks, never here.
    Create,
    /// Reading back and writing on (`--resume`): it must exist.
    Resume,
    /// Reading only (the journal's header, for its seed).
    Read,
}

/// Why a file is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A symbolic link: writing through it would change its target.
    Link,
    /// A folder, device or pipe.
    NotFile,
    /// More than one name: writing it would change the file under its
    /// other names too.
    HardLink {
        /// How many names it has.
        names: u64,
    },
    /// No name left: removed between the open and the check.
    Removed,
    /// Another user's file.
    Owner {
        /// Its owner.
        owner: u32,
        /// The user running the command.
        me: u32,
    },
    /// A journal others may write: what it vouches for cannot be trusted.
    Writable {
        /// Its permission bits.
        mode: u32,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Link => f.write_str(
                "it is a symbolic link (a task allowed to write its folder could have planted it); \
                 remove the link, or give the path of the file itself",
            ),
            Refusal::NotFile => f.write_str("it is not a regular file"),
            Refusal::HardLink { names } => write!(
                f,
                "it has another name (a hard link; {names} names in all), so writing it would change \
                 a file elsewhere; remove this name, or write the output elsewhere"
            ),
            Refusal::Removed => f.write_str("it was removed while it was being opened; run again"),
            Refusal::Owner { owner, me } => {
                write!(
                    f,
                    "it belongs to user {owner}, not to you (user {me}); remove it, or write the output elsewhere"
                )
            }
            Refusal::Writable { mode } => write!(
                f,
                "other users may write to it (mode {mode:o}), so what it vouches for cannot be trusted; \
                 run without --resume to start over"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// What the checks look at, from the open file's own metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Facts {
    kind: Kind,
    /// How many names it has (Unix).
    names: Option<u64>,
    /// Its owner (Unix).
    owner: Option<u32>,
    /// Its permission bits (Unix).
    mode: Option<u32>,
}

/// The kinds of file the checks tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Link,
    Other,
}

impl Kind {
    fn of(file_type: FileType) -> Kind {
        if file_type.is_symlink() {
            Kind::Link
        } else if file_type.is_file() {
            Kind::File
        } else {
            Kind::Other
        }
    }
}

#[cfg(unix)]
fn facts(metadata: &Metadata) -> Facts {
    use std::os::unix::fs::MetadataExt;
    Facts {
        kind: Kind::of(metadata.file_type()),
        names: Some(metadata.nlink()),
        owner: Some(metadata.uid()),
        mode: Some(metadata.mode() & 0o7777),
    }
}

#[cfg(not(unix))]
fn facts(metadata: &Metadata) -> Facts {
    Facts { kind: Kind::of(metadata.file_type()), names: None, owner: None, mode: None }
}

/// The user running the command (Unix).
#[cfg(unix)]
fn current_user() -> Option<u32> {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    Some(unsafe { libc::geteuid() })
}

#[cfg(not(unix))]
fn current_user() -> Option<u32> {
    None
}

/// Whether a file with these `facts` may serve as `role` for `access`,
/// run by user `me`.
fn check(facts: Facts, role: Role, access: Access, me: Option<u32>) -> Result<(), Refusal> {
    match facts.kind {
        Kind::File => {}
        Kind::Link => return Err(Refusal::Link),
        Kind::Other => return Err(Refusal::NotFile),
    }
    match facts.names {
        Some(0) => return Err(Refusal::Removed),
        Some(names) if names > 1 => return Err(Refusal::HardLink { names }),
        _ => {}
    }
    if let (Some(owner), Some(me)) = (facts.owner, me)
        && owner != me
    {
        return Err(Refusal::Owner { owner, me });
    }
    // A journal written afresh is made private (`make_private`) instead:
    // nothing in it is read.
    if role == Role::Journal
        && access != Access::Create
        && let Some(mode) = facts.mode
        && mode & 0o022 != 0
    {
        return Err(Refusal::Writable { mode });
    }
    Ok(())
}

/// The error for `path`, refused as `role`.
fn refused(role: Role, path: &Path, why: Refusal) -> anyhow::Error {
    anyhow::Error::new(why).context(format!("refusing the {role} {}", shown(path)))
}

/// Whether `path` itself is a symbolic link.
fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// Opens `path` as the run's `role` for `access`, without following a
/// final symbolic link, and checks the open file ([`check`]). A journal
/// created here is readable and writable by the user only.
pub fn open(path: &Path, role: Role, access: Access) -> Result<File> {
    let mut options = OpenOptions::new();
    match access {
        Access::Create => {
            // Emptied by the caller, once checked: a hard link's other
            // file must not be emptied on the way to refusing it.
            options.write(true).create(true).truncate(false);
        }
        Access::Resume => {
            options.read(true).write(true);
        }
        Access::Read => {
            options.read(true);
        }
    }
    no_follow(&mut options);
    if role == Role::Journal {
        private_when_created(&mut options);
    }
    let file = match options.open(path) {
        Ok(file) => file,
        Err(_) if is_link(path) => return Err(refused(role, path, Refusal::Link)),
        Err(e) => {
            let verb = if access == Access::Create { "create" } else { "open" };
            return Err(e).with_context(|| format!("cannot {verb} the {role} {}", shown(path)));
        }
    };
    let metadata = file.metadata().with_context(|| format!("cannot look at the {role} {}", shown(path)))?;
    check(facts(&metadata), role, access, current_user()).map_err(|why| refused(role, path, why))?;
    Ok(file)
}

/// Not following a final symbolic link: opening one fails (`ELOOP`), and
/// [`open`] then says it is a link. `O_NONBLOCK`: a pipe put in the
/// file's place is opened at once (and refused) instead of waiting for a
/// reader or writer; regular files ignore it.
#[cfg(unix)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
}

/// Opening the link itself rather than its target; [`check`] then finds
/// it is a link.
#[cfg(windows)]
fn no_follow(options: &mut OpenOptions) {
    use std::os::windows::fs::OpenOptionsExt;
    /// From the Windows API (`winbase.h`).
    const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
}

#[cfg(not(any(unix, windows)))]
fn no_follow(_options: &mut OpenOptions) {}

#[cfg(unix)]
fn private_when_created(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600);
}

#[cfg(not(unix))]
fn private_when_created(_options: &mut OpenOptions) {}

/// Makes a journal being written afresh readable and writable by the user
/// only, whatever its mode was: `--resume` trusts it, and it holds hashes
/// of the granted environment's values.
#[cfg(unix)]
pub fn make_private(file: &File, path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make the journal {} private", shown(path)))
}

#[cfg(not(unix))]
pub fn make_private(_file: &File, _path: &Path) -> Result<()> {
    Ok(())
}

/// What `-o PATH` is, looked at without following a final link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// A regular file, or nothing yet: written with a journal, through
    /// [`open`].
    File,
    /// A device or a pipe: written as a stream ([`open_stream`]), without
    /// a journal.
    Stream,
}

/// What `-o PATH` is. A symbolic link is refused, except one leading to a
/// pipe (`/dev/stdout` into a pipe, bash's `>(…)`) when `follow_to_pipe`:
/// the caller allows that only outside the folders tasks may write, where
/// no task can have planted it.
pub fn destination(path: &Path, follow_to_pipe: bool) -> Result<Destination> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Destination::File),
        Err(e) => return Err(e).with_context(|| format!("cannot look at the output {}", shown(path))),
    };
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(Destination::File);
    }
    if file_type.is_dir() {
        bail!("the output {} is a folder; give the path of a file", shown(path));
    }
    if file_type.is_symlink() && !(follow_to_pipe && leads_to_pipe(path)) {
        return Err(refused(Role::Output, path, Refusal::Link));
    }
    Ok(Destination::Stream)
}

/// Opens a device or pipe given as `-o` for writing, as it is: neither
/// created nor emptied. Checked once open: through a link, it must be a
/// pipe; else anything but a regular file or folder.
pub fn open_stream(path: &Path) -> Result<File> {
    let through_link = is_link(path);
    let file =
        OpenOptions::new().write(true).open(path).with_context(|| format!("cannot open the output {}", shown(path)))?;
    let file_type = file.metadata().with_context(|| format!("cannot look at the output {}", shown(path)))?.file_type();
    let fits = if through_link { is_pipe(file_type) } else { !file_type.is_file() && !file_type.is_dir() };
    if !fits {
        bail!("the output {} changed while it was being opened; run again", shown(path));
    }
    Ok(file)
}

/// Whether `path`, followed, is a pipe.
fn leads_to_pipe(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| is_pipe(m.file_type()))
}

#[cfg(unix)]
fn is_pipe(file_type: FileType) -> bool {
    use std::os::unix::fs::FileTypeExt;
    file_type.is_fifo()
}

#[cfg(not(unix))]
fn is_pipe(_file_type: FileType) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Facts {
        Facts { kind: Kind::File, names: Some(1), owner: Some(1000), mode: Some(0o600) }
    }

    #[test]
    fn a_private_file_of_one_name_passes_in_every_role() {
        for role in [Role::Output, Role::Journal] {
            for access in [Access::Create, Access::Resume, Access::Read] {
                assert_eq!(check(file(), role, access, Some(1000)), Ok(()));
            }
        }
        // Where the platform says nothing, nothing is refused but links.
        let bare = Facts { kind: Kind::File, names: None, owner: None, mode: None };
        assert_eq!(check(bare, Role::Journal, Access::Resume, None), Ok(()));
    }

    #[test]
    fn links_other_files_and_second_names_are_refused() {
        let link = Facts { kind: Kind::Link, ..file() };
        assert_eq!(check(link, Role::Output, Access::Create, Some(1000)), Err(Refusal::Link));
        let folder = Facts { kind: Kind::Other, ..file() };
        assert_eq!(check(folder, Role::Journal, Access::Read, Some(1000)), Err(Refusal::NotFile));
        let linked = Facts { names: Some(2), ..file() };
        assert_eq!(check(linked, Role::Output, Access::Create, Some(1000)), Err(Refusal::HardLink { names: 2 }));
        let gone = Facts { names: Some(0), ..file() };
        assert_eq!(check(gone, Role::Output, Access::Resume, Some(1000)), Err(Refusal::Removed));
    }

    #[test]
    fn another_user_s_file_is_refused_in_every_role() {
        for role in [Role::Output, Role::Journal] {
            assert_eq!(
                check(file(), role, Access::Create, Some(0)),
                Err(Refusal::Owner { owner: 1000, me: 0 }),
                "even for root"
            );
        }
    }

    #[test]
    fn a_journal_others_may_write_is_refused_when_read_back_only() {
        for mode in [0o620, 0o602, 0o666] {
            let open = Facts { mode: Some(mode), ..file() };
            assert_eq!(check(open, Role::Journal, Access::Resume, Some(1000)), Err(Refusal::Writable { mode }));
            assert_eq!(check(open, Role::Journal, Access::Read, Some(1000)), Err(Refusal::Writable { mode }));
            // Written afresh, it is made private; the output is not read back.
            assert_eq!(check(open, Role::Journal, Access::Create, Some(1000)), Ok(()));
            assert_eq!(check(open, Role::Output, Access::Resume, Some(1000)), Ok(()));
        }
        let readable = Facts { mode: Some(0o644), ..file() };
        assert_eq!(check(readable, Role::Journal, Access::Resume, Some(1000)), Ok(()));
    }

    #[test]
    fn refusals_name_the_file_and_why() {
        let message = format!("{:#}", refused(Role::Journal, Path::new("out.jsonl.journal"), Refusal::Link));
        assert!(message.starts_with("refusing the journal out.jsonl.journal: it is a symbolic link"), "{message}");
        let message = Refusal::HardLink { names: 2 }.to_string();
        assert!(message.contains("has another name (a hard link; 2 names in all)"), "{message}");
    }

    #[cfg(unix)]
    #[test]
    fn a_link_or_a_second_name_is_refused_and_its_target_kept() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.path().join("out.jsonl");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        for access in [Access::Create, Access::Resume, Access::Read] {
            let message = format!("{:#}", open(&link, Role::Output, access).err().unwrap());
            assert!(message.contains("is a symbolic link"), "{access:?}: {message}");
        }
        assert!(destination(&link, true).is_err(), "a link to a file is no pipe");
        let dangling = dir.path().join("dangling.journal");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(open(&dangling, Role::Journal, Access::Create).is_err());
        assert!(!dir.path().join("nowhere").exists(), "a dangling link's target is not created");
        std::fs::remove_file(&link).unwrap();
        std::fs::hard_link(&victim, &link).unwrap();
        let message = format!("{:#}", open(&link, Role::Output, Access::Create).err().unwrap());
        assert!(message.contains("has another name"), "{message}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[cfg(unix)]
    #[test]
    fn a_journal_is_created_private_and_refused_once_others_may_write_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl.journal");
        let file = open(&path, Role::Journal, Access::Create).unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let message = format!("{:#}", open(&path, Role::Journal, Access::Resume).err().unwrap());
        assert!(message.contains("other users may write to it (mode 666)"), "{message}");
        // Written afresh, it is made private again.
        let file = open(&path, Role::Journal, Access::Create).unwrap();
        make_private(&file, &path).unwrap();
        assert!(open(&path, Role::Journal, Access::Resume).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_in_the_file_s_place_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = std::ffi::CString::new(dir.path().join("fifo").into_os_string().into_encoded_bytes()).unwrap();
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        let fifo = dir.path().join("fifo");
        let message = format!("{:#}", open(&fifo, Role::Journal, Access::Read).err().unwrap());
        assert!(message.contains("is not a regular file"), "{message}");
        assert_eq!(destination(&fifo, false).unwrap(), Destination::Stream, "named itself, a pipe is a stream");
        let message = destination(dir.path(), true).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("is a folder"), "{message}");
    }
}
