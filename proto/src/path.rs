//! Remote paths: UTF-8, relative to the user's home ("/" is the home),
//! normalised once, component by component. No string-prefix checks: a path
//! is a list of plain names, and `..` can never climb above the home.

use std::fmt;
use std::path::PathBuf;

use crate::error::{ErrorKind, RemoteError};

/// Longest accepted path, in bytes.
pub const MAX_PATH: usize = 4096;
/// Longest accepted name (one component), in bytes.
pub const MAX_NAME: usize = 255;

/// A normalised path inside a home: zero or more plain names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemotePath {
    parts: Vec<String>,
}

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `..` would climb above the home.
    #[error("outside your home directory")]
    OutsideHome,
    /// The path holds a NUL byte.
    #[error("path contains a NUL byte")]
    Nul,
    /// One name is longer than [`MAX_NAME`] bytes.
    #[error("a name is longer than {MAX_NAME} bytes")]
    NameTooLong,
    /// The whole path is longer than [`MAX_PATH`] bytes.
    #[error("path is longer than {MAX_PATH} bytes")]
    TooLong,
    /// A name is [`crate::msg::PARTIALS_DIR`], reserved for files being
    /// received.
    #[error(
        "the name {} is reserved for files being received",
        crate::msg::PARTIALS_DIR
    )]
    Reserved,
}

impl PathError {
    /// The wire error for this refusal, naming the path as the user gave it.
    pub fn to_remote(&self, given: &str) -> RemoteError {
        match self {
            PathError::OutsideHome => RemoteError::new(ErrorKind::OutsideHome, given),
            other => RemoteError::new(ErrorKind::InvalidPath, format!("{given}: {other}")),
        }
    }
}

impl RemotePath {
    /// The home itself.
    pub fn root() -> RemotePath {
        RemotePath::default()
    }

    /// Parses a path relative to the home; a leading `/` means the same thing.
    pub fn parse(s: &str) -> Result<RemotePath, PathError> {
        RemotePath::root().join(s)
    }

    /// Resolves `s` against this path as a working directory: `s` starting
    /// with `/` starts from the home, otherwise from `self`.
    pub fn join(&self, s: &str) -> Result<RemotePath, PathError> {
        if s.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        if s.contains('\0') {
            return Err(PathError::Nul);
        }
        let mut parts = if s.starts_with('/') {
            Vec::new()
        } else {
            self.parts.clone()
        };
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PathError::OutsideHome);
                    }
                }
                name if name.len() > MAX_NAME => return Err(PathError::NameTooLong),
                crate::msg::PARTIALS_DIR => return Err(PathError::Reserved),
                name => parts.push(name.to_string()),
            }
        }
        let out = RemotePath { parts };
        if out.to_string().len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        Ok(out)
    }

    /// True for the home itself.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The names, outermost first.
    pub fn parts(&self) -> &[String] {
        &self.parts
    }

    /// The last name, if any.
    pub fn file_name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The parent directory (the home's parent is the home).
    pub fn parent(&self) -> RemotePath {
        let mut parts = self.parts.clone();
        parts.pop();
        RemotePath { parts }
    }

    /// This path plus one plain name (which must not contain `/`).
    pub fn child(&self, name: &str) -> Result<RemotePath, PathError> {
        if name.contains('/') || name == ".." || name == "." || name.is_empty() {
            return Err(PathError::OutsideHome);
        }
        self.join(name)
    }

    /// The relative filesystem path beneath the home (`.` for the home).
    pub fn to_relative(&self) -> PathBuf {
        if self.parts.is_empty() {
            PathBuf::from(".")
        } else {
            self.parts.iter().collect()
        }
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("/");
        }
        for p in &self.parts {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Result<String, PathError> {
        RemotePath::parse(s).map(|p| p.to_string())
    }

    #[test]
    fn normalises_component_by_component() {
        assert_eq!(p(""), Ok("/".into()));
        assert_eq!(p("/"), Ok("/".into()));
        assert_eq!(p("a//b/./c/"), Ok("/a/b/c".into()));
        assert_eq!(p("/a/b/../c"), Ok("/a/c".into()));
        assert_eq!(p("a/.."), Ok("/".into()));
        assert_eq!(p("..."), Ok("/...".into()));
        assert_eq!(p("..a/b.."), Ok("/..a/b..".into()));
        assert_eq!(p("/etc/passwd"), Ok("/etc/passwd".into()));
    }

    #[test]
    fn refuses_escapes_and_junk() {
        assert_eq!(p(".."), Err(PathError::OutsideHome));
        assert_eq!(p("../../etc"), Err(PathError::OutsideHome));
        assert_eq!(p("a/../../b"), Err(PathError::OutsideHome));
        assert_eq!(p("/.."), Err(PathError::OutsideHome));
        assert_eq!(p("a\0b"), Err(PathError::Nul));
        assert_eq!(p(&"x".repeat(256)), Err(PathError::NameTooLong));
        assert!(p(&"x".repeat(255)).is_ok());
        assert_eq!(p("a/.ferry-partials/x"), Err(PathError::Reserved));
        assert_eq!(p("a/../.ferry-partials"), Err(PathError::Reserved));
        assert!(p(".ferry-partials2").is_ok());
        assert_eq!(p(&"ab/".repeat(2000)), Err(PathError::TooLong));
    }

    #[test]
    fn join_against_a_working_directory() {
        let cwd = RemotePath::parse("/docs/2024").unwrap();
        assert_eq!(cwd.join("x").unwrap().to_string(), "/docs/2024/x");
        assert_eq!(cwd.join("../x").unwrap().to_string(), "/docs/x");
        assert_eq!(cwd.join("/x").unwrap().to_string(), "/x");
        assert_eq!(cwd.join("../../.."), Err(PathError::OutsideHome));
        assert_eq!(cwd.parent().to_string(), "/docs");
        assert_eq!(cwd.to_relative(), PathBuf::from("docs/2024"));
        assert_eq!(RemotePath::root().to_relative(), PathBuf::from("."));
        assert!(cwd.child("a/b").is_err());
        assert!(cwd.child("..").is_err());
    }

    proptest! {
        #[test]
        fn never_yields_dot_dot_or_empty_names(s in "[a./\\x00]{0,40}") {
            if let Ok(path) = RemotePath::parse(&s) {
                for part in path.parts() {
                    prop_assert!(part != ".." && part != "." && !part.is_empty() && !part.contains('/'));
                }
                // Normalising is idempotent.
                prop_assert_eq!(RemotePath::parse(&path.to_string()), Ok(path));
            }
        }
    }
}
