//! Every subcommand (and subcommand of a subcommand) answers `--help` with its usage and a
//! line of help for each argument; the list comes from the CLI's own definition, so a new
//! subcommand is covered without touching this test.

use clap::CommandFactory;
use kongup::cli::Cli;

/// Every path of subcommand names under the root, e.g. `["db", "status"]`.
fn subcommand_paths(command: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    for sub in command.get_subcommands() {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_string());
        out.push(path.clone());
        subcommand_paths(sub, &path, out);
    }
}

#[test]
fn every_subcommand_answers_help_with_its_usage_and_every_argument_documented() {
    let root = Cli::command();
    root.clone().debug_assert();
    let mut paths = Vec::new();
    subcommand_paths(&root, &[], &mut paths);
    assert!(paths.len() >= 11, "{paths:?}");
    for path in &paths {
        let out = assert_cmd::Command::cargo_bin("kongup")
            .unwrap()
            .args(path)
            .arg("--help")
            .timeout(std::time::Duration::from_secs(10))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "kongup {path:?} --help: {out:?}");
        assert!(
            text.contains("Usage: kongup"),
            "kongup {path:?} --help:\n{text}"
        );
    }
    // Every argument of every subcommand has a line of help.
    let mut undocumented = Vec::new();
    let mut stack = vec![(String::from("kongup"), root)];
    while let Some((name, command)) = stack.pop() {
        for arg in command.get_arguments() {
            let builtin = matches!(arg.get_id().as_str(), "help" | "version");
            if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                undocumented.push(format!("{name} {}", arg.get_id()));
            }
        }
        for sub in command.get_subcommands() {
            stack.push((format!("{name} {}", sub.get_name()), sub.clone()));
        }
    }
    assert!(
        undocumented.is_empty(),
        "arguments without help: {undocumented:?}"
    );
}
