//! What a sync will do: the comparison of one directory's two sorted
//! listings, and the plan that gathers its outcome (counts and bytes of
//! what to copy, update, delete and leave, and the changes themselves).

use std::collections::HashSet;

use super::rules::Rules;

/// The kind of an entry, as a sync sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link or a special file: never copied (skipped with a
    /// warning on the source side); deleted with `--delete` on the
    /// destination side like a file.
    Other,
}

/// One entry of a directory listing on either side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The name (one component).
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// How entries are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compare {
    /// By SHA-256 (files of equal size are hashed on both sides) instead
    /// of by size and modification time.
    pub checksum: bool,
    /// Plan deletions of what is only in the destination.
    pub delete: bool,
}

/// What the comparison of one directory says about one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A file the destination lacks.
    Copy { name: String, size: u64 },
    /// A file that differs (by size or mtime; or by size under `--checksum`).
    Update { name: String, size: u64 },
    /// A file the same on both sides.
    Same { name: String, size: u64 },
    /// Files of equal size under `--checksum`: hash both to decide;
    /// `mtime`: the source's, when the destination's differs.
    Hash {
        name: String,
        size: u64,
        mtime: Option<i64>,
    },
    /// Files with equal contents (`--checksum`) whose destination's
    /// modification time differs: only the time is set.
    Touch { name: String, size: u64, mtime: i64 },
    /// A directory the destination lacks: made, then its source walked.
    NewDir { name: String },
    /// A directory on both sides: walked on both.
    BothDirs { name: String },
    /// A file (or link) only in the destination, with `--delete`.
    DeleteFile { name: String, size: u64 },
    /// A directory only in the destination, with `--delete`: walked to
    /// count (and to keep what is excluded).
    DeleteDir { name: String },
    /// An excluded entry (either side): left alone.
    Excluded { name: String },
    /// Not synced, and why (a link in the source, or a file where a
    /// directory is, or the other way round).
    Skip { name: String, why: String },
}

/// Joins a directory's relative path and a name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Compares one directory: `src` and `dst` are its listings sorted by
/// name (`dst` empty when the destination lacks the directory, `src`
/// empty when only the destination has it). `dir` is its path relative
/// to the synced directory, for the rules.
pub fn compare_dir(
    dir: &str,
    src: &[Item],
    dst: &[Item],
    rules: &Rules,
    how: Compare,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(src.len().max(dst.len()));
    let (mut i, mut j) = (0, 0);
    while i < src.len() || j < dst.len() {
        let order = match (src.get(i), dst.get(j)) {
            (Some(s), Some(d)) => s.name.cmp(&d.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (s, d) = match order {
            std::cmp::Ordering::Less => (src.get(i), None),
            std::cmp::Ordering::Greater => (None, dst.get(j)),
            std::cmp::Ordering::Equal => (src.get(i), dst.get(j)),
        };
        if s.is_some() {
            i += 1;
        }
        if d.is_some() {
            j += 1;
        }
        if let Some(step) = compare_one(dir, s, d, rules, how) {
            steps.push(step);
        }
    }
    steps
}

fn compare_one(
    dir: &str,
    src: Option<&Item>,
    dst: Option<&Item>,
    rules: &Rules,
    how: Compare,
) -> Option<Step> {
    let any = src.or(dst)?;
    let name = any.name.clone();
    // An entry that is a directory on either side is matched as one, so
    // `build/` excludes a directory whatever is on the other side.
    let is_dir =
        src.is_some_and(|s| s.kind == Kind::Dir) || dst.is_some_and(|d| d.kind == Kind::Dir);
    if rules.excluded(&join(dir, &name), is_dir) {
        return Some(Step::Excluded { name });
    }
    Some(match (src, dst) {
        (Some(s), None) => match s.kind {
            Kind::File => Step::Copy { name, size: s.size },
            Kind::Dir => Step::NewDir { name },
            Kind::Other => Step::Skip {
                name,
                why: "symbolic link or special file skipped".into(),
            },
        },
        (None, Some(d)) if !how.delete => {
            let _ = d;
            return None;
        }
        (None, Some(d)) => match d.kind {
            Kind::Dir => Step::DeleteDir { name },
            Kind::File | Kind::Other => Step::DeleteFile { name, size: d.size },
        },
        (Some(s), Some(d)) => match (s.kind, d.kind) {
            (Kind::File, Kind::File) => {
                if s.size != d.size {
                    Step::Update { name, size: s.size }
                } else if how.checksum {
                    let mtime = (s.mtime != d.mtime).then_some(s.mtime);
                    Step::Hash {
                        name,
                        size: s.size,
                        mtime,
                    }
                } else if s.mtime == d.mtime {
                    Step::Same { name, size: s.size }
                } else {
                    Step::Update { name, size: s.size }
                }
            }
            (Kind::Dir, Kind::Dir) => Step::BothDirs { name },
            (Kind::Other, _) => Step::Skip {
                name,
                why: "symbolic link or special file skipped".into(),
            },
            (Kind::File, _) => Step::Skip {
                name,
                why: "a file in the source, not a file in the destination; left alone".into(),
            },
            (Kind::Dir, _) => Step::Skip {
                name,
                why: "a directory in the source, not a directory in the destination; left alone"
                    .into(),
            },
        },
        (None, None) => return None,
    })
}

/// Files and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Tally {
    fn add(&mut self, size: u64) {
        self.files += 1;
        self.bytes += size;
    }
}

/// A file to transfer, by its path relative to the synced directories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Relative path (`/`-separated).
    pub rel: String,
    /// Size in the source, as listed.
    pub size: u64,
    /// It replaces a file that differs (else the destination lacks it).
    pub update: bool,
}

/// A destination file whose modification time is set to the source's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    /// Relative path.
    pub rel: String,
    /// The source's modification time (Unix seconds).
    pub mtime: i64,
}

/// An entry to delete in the destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// Relative path.
    pub rel: String,
    /// A directory, removed with all it holds (nothing in it is excluded).
    pub dir: bool,
}

/// The outcome of comparing two trees. Unchanged entries are only
/// counted; the changes are kept (memory grows with them, not with the
/// trees).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Files the destination lacks.
    pub copy: Tally,
    /// Files that differ.
    pub update: Tally,
    /// Files (and links) to delete, within deleted directories too.
    pub delete: Tally,
    /// Files the same on both sides.
    pub unchanged: Tally,
    /// Directories to delete (with `--delete`).
    pub delete_dirs: u64,
    /// The destination directory itself is missing and is made.
    pub make_root: bool,
    /// Directories to make, sorted.
    pub new_dirs: Vec<String>,
    /// Files to transfer, sorted by path.
    pub transfers: Vec<Change>,
    /// Unchanged files whose time is set (`--checksum` found equal
    /// contents under different times).
    pub touches: Vec<Touch>,
    /// What to delete, sorted, a directory standing for its contents.
    pub deletions: Vec<Deletion>,
    /// Entries skipped, and why (links, kind mismatches, unreadable
    /// directories, names that cannot cross).
    pub warnings: Vec<String>,
    /// A directory could not be listed: deletions are not made.
    pub incomplete: bool,
    /// Deletions found so far, before [`Plan::finish`] folds them.
    found: Vec<(String, bool)>,
    /// Directories only in the destination that hold something kept.
    kept: HashSet<String>,
}

impl Plan {
    /// Takes a step found in directory `dir` (whose source side is absent
    /// when `dst_only`).
    pub fn take(&mut self, dir: &str, dst_only: bool, step: &Step) {
        match step {
            Step::Copy { name, size } => {
                self.copy.add(*size);
                self.transfers.push(Change {
                    rel: join(dir, name),
                    size: *size,
                    update: false,
                });
            }
            Step::Update { name, size } => {
                self.update.add(*size);
                self.transfers.push(Change {
                    rel: join(dir, name),
                    size: *size,
                    update: true,
                });
            }
            Step::Same { size, .. } => self.unchanged.add(*size),
            Step::Touch { name, size, mtime } => {
                self.unchanged.add(*size);
                self.touches.push(Touch {
                    rel: join(dir, name),
                    mtime: *mtime,
                });
            }
            Step::Hash { .. } | Step::BothDirs { .. } => {}
            Step::NewDir { name } => self.new_dirs.push(join(dir, name)),
            Step::DeleteFile { name, size } => {
                self.delete.add(*size);
                self.found.push((join(dir, name), false));
            }
            Step::DeleteDir { name } => self.found.push((join(dir, name), true)),
            Step::Excluded { .. } | Step::Skip { .. } => {
                if let Step::Skip { name, why } = step {
                    self.warnings.push(format!("{}: {why}", join(dir, name)));
                }
                if dst_only {
                    self.keep(dir);
                }
            }
        }
    }

    /// Something in `dir` (only in the destination) is kept, so neither it
    /// nor any directory above it is deleted.
    pub fn keep(&mut self, dir: &str) {
        let mut d = dir;
        while !d.is_empty() && self.kept.insert(d.to_string()) {
            d = d.rsplit_once('/').map_or("", |(p, _)| p);
        }
    }

    /// Sorts the lists and folds deletions: a directory with nothing kept
    /// in it is deleted whole, standing for its contents.
    pub fn finish(&mut self) {
        self.new_dirs.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        self.transfers
            .sort_by(|a, b| a.rel.split('/').cmp(b.rel.split('/')));
        let mut found = std::mem::take(&mut self.found);
        found.retain(|(rel, dir)| !(*dir && self.kept.contains(rel)));
        found.sort_by(|a, b| a.0.split('/').cmp(b.0.split('/')));
        self.delete_dirs = found.iter().filter(|(_, dir)| *dir).count() as u64;
        let mut folded: Vec<Deletion> = Vec::new();
        for (rel, dir) in found {
            let inside = folded.last().is_some_and(|last| {
                last.dir
                    && rel.len() > last.rel.len()
                    && rel.starts_with(&last.rel)
                    && rel.as_bytes()[last.rel.len()] == b'/'
            });
            if !inside {
                folded.push(Deletion { rel, dir });
            }
        }
        self.deletions = folded;
        self.kept = HashSet::new();
    }

    /// Nothing to transfer or delete.
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty()
            && self.touches.is_empty()
            && self.deletions.is_empty()
            && self.new_dirs.is_empty()
            && !self.make_root
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::Rule;
    use super::*;

    fn file(name: &str, size: u64, mtime: i64) -> Item {
        Item {
            name: name.into(),
            kind: Kind::File,
            size,
            mtime,
        }
    }

    fn dir(name: &str) -> Item {
        Item {
            name: name.into(),
            kind: Kind::Dir,
            size: 0,
            mtime: 0,
        }
    }

    fn names(steps: &[Step]) -> Vec<String> {
        steps.iter().map(|s| format!("{s:?}")).collect()
    }

    #[test]
    fn size_and_mtime_decide_by_default() {
        let src = [
            file("a", 1, 10),
            file("b", 2, 10),
            file("c", 3, 10),
            file("e", 5, 1),
        ];
        let dst = [
            file("b", 2, 10),
            file("c", 3, 11),
            file("d", 4, 10),
            file("e", 6, 1),
        ];
        let steps = compare_dir("", &src, &dst, &Rules::default(), Compare::default());
        assert_eq!(
            steps,
            vec![
                Step::Copy {
                    name: "a".into(),
                    size: 1
                },
                Step::Same {
                    name: "b".into(),
                    size: 2
                },
                Step::Update {
                    name: "c".into(),
                    size: 3
                },
                Step::Update {
                    name: "e".into(),
                    size: 5
                },
            ],
            "d is only in the destination and stays without --delete"
        );
    }

    #[test]
    fn checksum_hashes_files_of_equal_size_whatever_their_mtime() {
        let how = Compare {
            checksum: true,
            delete: false,
        };
        let src = [file("a", 1, 10), file("b", 2, 10), file("c", 3, 10)];
        let dst = [file("a", 1, 99), file("b", 3, 10), file("c", 3, 10)];
        let steps = compare_dir("", &src, &dst, &Rules::default(), how);
        assert_eq!(
            steps,
            vec![
                Step::Hash {
                    name: "a".into(),
                    size: 1,
                    mtime: Some(10)
                },
                Step::Update {
                    name: "b".into(),
                    size: 2
                },
                Step::Hash {
                    name: "c".into(),
                    size: 3,
                    mtime: None
                },
            ],
            "a's time is to be set if the contents are equal; c's is right"
        );
    }

    #[test]
    fn equal_contents_under_other_times_are_unchanged_but_not_nothing_to_do() {
        let mut plan = Plan::default();
        let touch = Step::Touch {
            name: "a".into(),
            size: 5,
            mtime: 10,
        };
        plan.take("d", false, &touch);
        plan.finish();
        assert_eq!(plan.unchanged, Tally { files: 1, bytes: 5 });
        assert!(plan.transfers.is_empty());
        assert_eq!(
            plan.touches,
            vec![Touch {
                rel: "d/a".into(),
                mtime: 10
            }]
        );
        assert!(!plan.is_empty(), "the time still has to be set");
    }

    #[test]
    fn delete_only_with_the_flag_and_excluded_entries_are_left_alone() {
        let rules = Rules::new(&[Rule::exclude("*.keep")]).unwrap();
        let how = Compare {
            checksum: false,
            delete: true,
        };
        let dst = [file("x", 7, 0), file("y.keep", 1, 0), dir("z")];
        let steps = compare_dir("sub", &[], &dst, &rules, how);
        assert_eq!(
            steps,
            vec![
                Step::DeleteFile {
                    name: "x".into(),
                    size: 7
                },
                Step::Excluded {
                    name: "y.keep".into()
                },
                Step::DeleteDir { name: "z".into() },
            ]
        );
        assert!(compare_dir("sub", &[], &dst, &rules, Compare::default())
            .iter()
            .all(|s| matches!(s, Step::Excluded { .. })));
    }

    #[test]
    fn new_directories_links_and_kind_mismatches() {
        let link = Item {
            kind: Kind::Other,
            ..file("l", 0, 0)
        };
        let src = [dir("a"), dir("b"), file("c", 1, 0), link, dir("m")];
        let dst = [dir("b"), dir("c"), file("m", 1, 0)];
        let steps = compare_dir("", &src, &dst, &Rules::default(), Compare::default());
        let got = names(&steps);
        assert!(got[0].starts_with("NewDir"), "{got:?}");
        assert!(got[1].starts_with("BothDirs"), "{got:?}");
        assert!(
            got[2].starts_with("Skip") && got[3].starts_with("Skip") && got[4].starts_with("Skip"),
            "{got:?}"
        );
        assert_eq!(steps.len(), 5);
    }

    #[test]
    fn a_plan_counts_and_folds_deletions_of_whole_directories() {
        let mut plan = Plan::default();
        plan.take(
            "",
            false,
            &Step::Copy {
                name: "n".into(),
                size: 5,
            },
        );
        plan.take(
            "",
            false,
            &Step::Same {
                name: "s".into(),
                size: 3,
            },
        );
        plan.take(
            "",
            false,
            &Step::DeleteDir {
                name: "gone".into(),
            },
        );
        plan.take(
            "",
            false,
            &Step::DeleteDir {
                name: "half".into(),
            },
        );
        plan.take(
            "",
            false,
            &Step::DeleteFile {
                name: "old".into(),
                size: 2,
            },
        );
        plan.take(
            "gone",
            true,
            &Step::DeleteFile {
                name: "f".into(),
                size: 10,
            },
        );
        plan.take(
            "gone",
            true,
            &Step::DeleteDir {
                name: "deeper".into(),
            },
        );
        plan.take(
            "gone/deeper",
            true,
            &Step::DeleteFile {
                name: "g".into(),
                size: 1,
            },
        );
        plan.take(
            "half",
            true,
            &Step::DeleteFile {
                name: "f".into(),
                size: 4,
            },
        );
        plan.take("half", true, &Step::DeleteDir { name: "in".into() });
        plan.take(
            "half/in",
            true,
            &Step::Excluded {
                name: "x.keep".into(),
            },
        );
        plan.finish();
        assert_eq!(plan.copy, Tally { files: 1, bytes: 5 });
        assert_eq!(plan.unchanged, Tally { files: 1, bytes: 3 });
        assert_eq!(
            plan.delete,
            Tally {
                files: 4,
                bytes: 17
            }
        );
        assert_eq!(
            plan.delete_dirs, 2,
            "gone and gone/deeper; half holds a kept file"
        );
        let del: Vec<_> = plan
            .deletions
            .iter()
            .map(|d| (d.rel.as_str(), d.dir))
            .collect();
        assert_eq!(
            del,
            vec![("gone", true), ("half/f", false), ("old", false)],
            "gone is removed whole; half and half/in stay for half/in/x.keep"
        );
    }

    #[test]
    fn paths_sort_by_component() {
        let mut plan = Plan::default();
        for name in ["a.b", "a"] {
            plan.take("", false, &Step::NewDir { name: name.into() });
        }
        plan.take("a", false, &Step::NewDir { name: "z".into() });
        plan.finish();
        assert_eq!(plan.new_dirs, ["a", "a/z", "a.b"]);
    }
}
