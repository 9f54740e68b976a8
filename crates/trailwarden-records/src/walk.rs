//! Files under the paths a user names, in a stable order.

use crate::error::{ErrorKind, ReadError};
use std::fs;
use std::path::{Path, PathBuf};

/// Walks `paths`: a file is yielded as it is; a directory is walked recursively, its entries
/// in sorted order (byte order of the names), files and subdirectories interleaved.
///
/// Symbolic links are followed; a directory that is its own ancestor is an error
/// ([`ErrorKind::SymlinkLoop`]) and is not entered again. Inside directories only regular
/// files are yielded (sockets and FIFOs are skipped); a path given directly is yielded
/// whatever it is, so that opening it reports the problem. Hidden files are not skipped.
pub fn walk<I, P>(paths: I) -> Walk
where
    I: IntoIterator<Item = P>,
    P: AsRef<Path>,
{
    let roots: Vec<PathBuf> = paths.into_iter().map(|p| p.as_ref().to_owned()).collect();
    Walk {
        roots: roots.into_iter(),
        stack: Vec::new(),
    }
}

/// Iterator returned by [`walk`].
#[derive(Debug)]
pub struct Walk {
    roots: std::vec::IntoIter<PathBuf>,
    /// The directories being listed, outermost first: the ancestors of the next entry.
    stack: Vec<Frame>,
}

#[derive(Debug)]
struct Frame {
    canonical: PathBuf,
    entries: std::vec::IntoIter<PathBuf>,
}

impl Iterator for Walk {
    type Item = Result<PathBuf, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (path, is_root) = match self.stack.last_mut() {
                Some(frame) => match frame.entries.next() {
                    Some(path) => (path, false),
                    None => {
                        self.stack.pop();
                        continue;
                    }
                },
                None => (self.roots.next()?, true),
            };
            if let Some(item) = self.visit(path, is_root) {
                return Some(item);
            }
        }
    }
}

impl Walk {
    /// Yields `path`, or enters it if it is a directory (then yields nothing, or an error).
    fn visit(&mut self, path: PathBuf, is_root: bool) -> Option<Result<PathBuf, ReadError>> {
        let fail =
            |path: &Path, kind| Some(Err(ReadError::new(&path.display().to_string(), None, kind)));
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) => return fail(&path, ErrorKind::Open(e)),
        };
        if !metadata.is_dir() {
            return (is_root || metadata.is_file()).then_some(Ok(path));
        }
        let canonical = match fs::canonicalize(&path) {
            Ok(canonical) => canonical,
            Err(e) => return fail(&path, ErrorKind::ListDir(e)),
        };
        if self.stack.iter().any(|frame| frame.canonical == canonical) {
            return fail(&path, ErrorKind::SymlinkLoop);
        }
        let listing = match fs::read_dir(&path) {
            Ok(listing) => listing,
            Err(e) => return fail(&path, ErrorKind::ListDir(e)),
        };
        let mut entries = Vec::new();
        let mut first_error = None;
        for entry in listing {
            match entry {
                Ok(entry) => entries.push(entry.path()),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        entries.sort();
        self.stack.push(Frame {
            canonical,
            entries: entries.into_iter(),
        });
        first_error.and_then(|e| fail(&path, ErrorKind::ListDir(e)))
    }
}
