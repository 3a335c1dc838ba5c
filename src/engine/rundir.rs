//! Where a run lives: `$XDG_STATE_HOME/kongup/runs/<run-id>/` (fallback
//! `~/.local/state/kongup/runs/<run-id>/`), or the directory given with `--journal`.
//!
//! The run directory holds the journal (locked by the kongup that drives the run), the
//! name of that kongup (`lock`), the full log of every step (`logs/`) and what actions
//! keep (`backups/`). Directories are created 0700, files 0600.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::plan::steps::StepRef;

pub const LOGS_DIR: &str = "logs";
pub const BACKUPS_DIR: &str = "backups";

/// `$XDG_STATE_HOME/kongup/runs`, else `~/.local/state/kongup/runs`.
pub fn default_runs_dir() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join(".local").join("state")))
        .map(|state| state.join("kongup").join("runs"))
}

/// The run id of a plan: its name, lower-cased, with anything but letters, digits, `.`,
/// `_` and `-` turned into `-` (one for a run of them). The same plan name always finds
/// the same run again.
pub fn run_id_for(plan_name: &str) -> String {
    let mut id = String::with_capacity(plan_name.len());
    for c in plan_name.chars().map(|c| c.to_ascii_lowercase()) {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            c
        } else {
            '-'
        };
        if !(c == '-' && id.ends_with('-')) {
            id.push(c);
        }
    }
    let id = id.trim_matches(|c| c == '-' || c == '.').to_string();
    if id.is_empty() { "run".to_string() } else { id }
}

/// The run directory of a plan under the default state directory.
pub fn default_run_dir(plan_name: &str) -> Option<PathBuf> {
    default_runs_dir().map(|runs| runs.join(run_id_for(plan_name)))
}

/// Creates a directory (and missing parents) with mode 0700.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Whether an existing directory is readable by others than its owner.
pub fn is_shared(path: &Path) -> io::Result<bool> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o077 != 0)
}

/// Opens a file for appending, creating it with mode 0600.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Creates (or empties) a file only its owner can read, for writing.
pub fn open_private_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

/// The full log of a step: `logs/<phase>-<id>.log`.
pub fn step_log_path(run_dir: &Path, step: &StepRef) -> PathBuf {
    run_dir
        .join(LOGS_DIR)
        .join(format!("{}-{}.log", step.phase, run_id_for(&step.id)))
}

/// The run under `runs_dir` whose journal changed last.
pub fn most_recent_run(runs_dir: &Path) -> io::Result<Option<PathBuf>> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(runs_dir)? {
        let dir = entry?.path();
        let journal = dir.join(super::journal::JOURNAL_FILE);
        let Ok(modified) = std::fs::metadata(&journal).and_then(|m| m.modified()) else {
            continue;
        };
        if best.as_ref().is_none_or(|(when, _)| modified > *when) {
            best = Some((modified, dir));
        }
    }
    Ok(best.map(|(_, dir)| dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::steps::PhaseName;

    #[test]
    fn run_ids_are_safe_file_names() {
        assert_eq!(run_id_for("Prod EU: 3.4 -> 3.10"), "prod-eu-3.4-3.10");
        assert_eq!(run_id_for("../../etc"), "etc");
        assert_eq!(run_id_for("///"), "run");
        assert_eq!(run_id_for("kong-upgrade_1"), "kong-upgrade_1");
    }

    #[test]
    fn private_dirs_and_files_have_owner_only_modes() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a").join("b");
        create_private_dir(&run).unwrap();
        assert_eq!(
            std::fs::metadata(&run).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(!is_shared(&run).unwrap());
        let log = run.join("x.log");
        open_private_append(&log).unwrap();
        assert_eq!(
            std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            step_log_path(&run, &StepRef::new(PhaseName::Cluster, "stop-x")),
            run.join("logs").join("cluster-stop-x.log")
        );
    }
}
