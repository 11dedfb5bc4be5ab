//! Include and exclude rules of `ferry sync`, rsync-like: the first rule
//! that matches an entry decides, and an entry no rule matches is included.

use globset::{Glob, GlobBuilder, GlobMatcher};

/// What a rule does with the entries it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Take part in the sync.
    Include,
    /// Left alone on both sides: neither copied nor deleted.
    Exclude,
}

/// One rule as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Include or exclude.
    pub verdict: Verdict,
    /// The glob.
    pub pattern: String,
}

impl Rule {
    /// An `--include GLOB`.
    pub fn include(pattern: &str) -> Rule {
        Rule {
            verdict: Verdict::Include,
            pattern: pattern.to_string(),
        }
    }

    /// An `--exclude GLOB`.
    pub fn exclude(pattern: &str) -> Rule {
        Rule {
            verdict: Verdict::Exclude,
            pattern: pattern.to_string(),
        }
    }
}

/// A glob that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("bad pattern {pattern:?}: {reason}")]
pub struct BadPattern {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

struct Compiled {
    verdict: Verdict,
    matcher: GlobMatcher,
    /// Written with a leading `/`: matched against the whole relative path
    /// only, never the base name.
    anchored: bool,
    /// Written with a trailing `/`: matches directories only.
    dirs_only: bool,
}

/// The rules of one sync, in the order given.
///
/// A glob matches an entry when it matches its path relative to the
/// synced directory (`a/b/c.txt`) or its base name (`c.txt`); `*` and `?`
/// never match `/`, `**` does. A leading `/` anchors the glob at the
/// synced directory (whole path only); a trailing `/` makes it match
/// directories only. An excluded directory is not entered. As in rsync,
/// `--include '*.jpg' --exclude '*'` also excludes every directory (`*`
/// matches their names): add `--include '*/'` first to walk them.
#[derive(Default)]
pub struct Rules {
    rules: Vec<Compiled>,
}

impl Rules {
    /// Compiles the rules.
    pub fn new(rules: &[Rule]) -> Result<Rules, BadPattern> {
        let rules = rules
            .iter()
            .map(|r| {
                let mut glob = r.pattern.as_str();
                let anchored = glob.starts_with('/');
                glob = glob.trim_start_matches('/');
                let dirs_only = glob.ends_with('/');
                glob = glob.trim_end_matches('/');
                let bad = |reason: String| BadPattern {
                    pattern: r.pattern.clone(),
                    reason,
                };
                if glob.is_empty() {
                    return Err(bad("empty".into()));
                }
                let matcher = GlobBuilder::new(glob)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map(|g: Glob| g.compile_matcher())
                    .map_err(|e| bad(e.kind().to_string()))?;
                Ok(Compiled {
                    verdict: r.verdict,
                    matcher,
                    anchored,
                    dirs_only,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Rules { rules })
    }

    /// No rules at all: everything is included.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The verdict for the entry at relative path `rel` (`/`-separated,
    /// no leading `/`).
    pub fn verdict(&self, rel: &str, is_dir: bool) -> Verdict {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        for r in &self.rules {
            if r.dirs_only && !is_dir {
                continue;
            }
            if r.matcher.is_match(rel) || (!r.anchored && r.matcher.is_match(base)) {
                return r.verdict;
            }
        }
        Verdict::Include
    }

    /// Whether the entry is excluded.
    pub fn excluded(&self, rel: &str, is_dir: bool) -> bool {
        self.verdict(rel, is_dir) == Verdict::Exclude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: &[Rule]) -> Rules {
        Rules::new(list).unwrap()
    }

    #[test]
    fn no_rules_include_everything() {
        let r = rules(&[]);
        assert!(r.is_empty());
        assert!(!r.excluded("a/b.txt", false));
    }

    #[test]
    fn a_glob_matches_the_base_name_or_the_whole_path() {
        let r = rules(&[Rule::exclude("*.tmp"), Rule::exclude("cache/**")]);
        assert!(r.excluded("x.tmp", false));
        assert!(r.excluded("deep/er/x.tmp", false), "by its base name");
        assert!(!r.excluded("x.tmpl", false));
        assert!(r.excluded("cache/a/b", false), "by its whole path");
        assert!(
            !r.excluded("sub/cache/a", false),
            "cache/** is not a base name"
        );
        // `*` does not cross directories.
        let r = rules(&[Rule::exclude("a/*.txt")]);
        assert!(r.excluded("a/x.txt", false));
        assert!(!r.excluded("a/b/x.txt", false));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        // Include before a broader exclude: the include wins.
        let r = rules(&[Rule::include("keep.log"), Rule::exclude("*.log")]);
        assert!(!r.excluded("keep.log", false));
        assert!(!r.excluded("d/keep.log", false));
        assert!(r.excluded("other.log", false));
        // The other way round, the exclude comes first and wins.
        let r = rules(&[Rule::exclude("*.log"), Rule::include("keep.log")]);
        assert!(r.excluded("keep.log", false));
    }

    #[test]
    fn anchors_and_directory_only_rules() {
        let r = rules(&[Rule::exclude("/build")]);
        assert!(r.excluded("build", true));
        assert!(!r.excluded("src/build", true), "anchored at the top");
        let r = rules(&[Rule::exclude("build/")]);
        assert!(r.excluded("src/build", true));
        assert!(!r.excluded("src/build", false), "a file named build stays");
    }

    #[test]
    fn include_only_some_files_rsync_style() {
        let r = rules(&[
            Rule::include("*/"),
            Rule::include("*.jpg"),
            Rule::exclude("*"),
        ]);
        assert!(!r.excluded("trip", true));
        assert!(!r.excluded("trip/a.jpg", false));
        assert!(r.excluded("trip/a.txt", false));
    }

    #[test]
    fn bad_patterns_are_refused_with_their_text() {
        let e = Rules::new(&[Rule::exclude("[a")]).err().unwrap();
        assert!(e.to_string().contains("[a"), "{e}");
        assert!(Rules::new(&[Rule::exclude("/")]).is_err());
    }
}
