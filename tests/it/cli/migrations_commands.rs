//! `kongup plan` shows the `kong migrations` commands kongup will run, for every example
//! plan (assets/plans/, docs/plan.md, README.md): each with an explicit `--db-timeout` and
//! a `--lock-timeout` no shorter than it (Kong's lock is never renewed:
//! docs/kong/migrations-and-paths.md §1).

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use serde_json::Value;

/// The first ```yaml block of a Markdown file, written to `dir`.
fn markdown_example(dir: &Path, doc: &str) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
    let start = text.find("```yaml\n").expect("a yaml example") + "```yaml\n".len();
    let end = start + text[start..].find("```").unwrap();
    let path = dir.join(doc.replace('/', "-") + ".yaml");
    std::fs::write(&path, &text[start..end]).unwrap();
    path
}

fn examples(dir: &Path) -> Vec<PathBuf> {
    let mut plans: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/plans"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
    plans.sort();
    plans.push(markdown_example(dir, "docs/plan.md"));
    plans.push(markdown_example(dir, "README.md"));
    plans
}

fn kongup_plan(path: &Path, json: bool) -> String {
    let mut command = cargo_bin_cmd!("kongup");
    command.arg("plan").arg(path);
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The number after `--NAME` in a command line.
fn seconds(command: &str, name: &str) -> u64 {
    let words: Vec<&str> = command.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == name)
        .unwrap_or_else(|| panic!("no {name} in `{command}`"));
    words[at + 1].parse().unwrap()
}

#[test]
fn every_example_shows_its_migrations_commands_with_a_lock_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut with_migrations = 0;
    for path in examples(dir.path()) {
        let text = kongup_plan(&path, false);
        let commands: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("kongup runs: "))
            .collect();
        let json: Value = serde_json::from_str(&kongup_plan(&path, true)).unwrap();
        let mut steps = 0;
        for phase in json["phases"].as_array().unwrap() {
            for step in phase["steps"].as_array().unwrap() {
                let kind = step["kind"].as_str().unwrap();
                if !kind.starts_with("migrations-") {
                    continue;
                }
                steps += 1;
                let verb = kind.strip_prefix("migrations-").unwrap();
                let instruction = step["instruction"].as_str().unwrap();
                let shown = commands
                    .iter()
                    .find(|c| c.contains(&format!(" migrations {verb} ")))
                    .unwrap_or_else(|| {
                        panic!("{}: no `{verb}` command in\n{text}", path.display())
                    });
                assert!(
                    instruction.contains(shown),
                    "{}: {instruction}",
                    path.display()
                );
                let (db, lock) = (
                    seconds(shown, "--db-timeout"),
                    seconds(shown, "--lock-timeout"),
                );
                assert!(lock >= db, "{}: `{shown}`", path.display());
            }
        }
        assert_eq!(commands.len(), steps, "{}: {text}", path.display());
        with_migrations += usize::from(steps > 0);
    }
    // All but the DB-less example migrate a database.
    assert_eq!(with_migrations, 8);
}
