//! Plans kongup refuses to load for safety: commands that destroy the database, and
//! `auto_advance` with nobody to set the split.

use kongup::plan::load::parse_plan;

const BASE: &str = "\
name: refusals
from: 3.4.3
to: 3.5.0
mode: traditional
strategy: in-place
clusters:
  x:
    nodes:
      - name: x1
        proxy_url: http://127.0.0.1:8000
  y:
    nodes:
      - name: y1
        proxy_url: http://127.0.0.1:9000
";

/// The errors of a plan that must not load, one `file:line:col: message` a line.
fn refused(source: &str) -> Vec<(usize, usize, String)> {
    match parse_plan(source, "plan.yaml") {
        Ok(_) => panic!("the plan was accepted:\n{source}"),
        Err(errors) => errors
            .diagnostics
            .into_iter()
            .map(|d| (d.line, d.column, d.message))
            .collect(),
    }
}

fn line_col(source: &str, needle: &str) -> (usize, usize) {
    source
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(needle).map(|c| (i + 1, c + 1)))
        .expect("needle in the source")
}

#[test]
fn a_plan_command_that_resets_the_database_is_refused_where_it_is_written() {
    let source = format!(
        "{BASE}steps:\n  deploy-y:\n    commands:\n      - run: [kong, migrations, reset, -y]\n"
    );
    let errors = refused(&source);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, column, message) = &errors[0];
    assert_eq!((*line, *column), line_col(&source, "[kong"), "{message}");
    assert!(message.contains("kong migrations reset"), "{message}");
}

#[test]
fn a_forced_bootstrap_in_a_shell_line_of_an_inserted_step_is_refused() {
    let source = format!(
        "{BASE}steps:\n  insert:\n    - after: backup\n      id: oops\n      title: Oops\n      commands:\n        - shell: \"kong migrations bootstrap -f && echo done\"\n"
    );
    let errors = refused(&source);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, column, message) = &errors[0];
    assert_eq!((*line, *column), line_col(&source, "\"kong"), "{message}");
    assert!(message.contains("bootstrap -f"), "{message}");
}

#[test]
fn ordinary_migrations_commands_still_load() {
    let source = format!(
        "{BASE}steps:\n  deploy-y:\n    commands:\n      - run: [kong, migrations, bootstrap]\n      - run: [kong, migrations, up, -f]\n"
    );
    assert!(parse_plan(&source, "plan.yaml").is_ok());
}

#[test]
fn auto_advance_with_the_manual_driver_is_refused() {
    let source = BASE.replace("strategy: in-place", "strategy: blue-green")
        + "traffic:\n  driver:\n    type: manual\n  auto_advance: true\n";
    let errors = refused(&source);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let (line, column, message) = &errors[0];
    assert_eq!((*line, *column), line_col(&source, "true"), "{message}");
    assert!(message.contains("manual"), "{message}");

    // Without a driver the plan is refused anyway (traffic moves), auto_advance too.
    let source = BASE.replace("strategy: in-place", "strategy: blue-green")
        + "traffic:\n  auto_advance: true\n";
    let errors = refused(&source);
    assert!(
        errors
            .iter()
            .any(|(_, _, m)| m.contains("traffic.auto_advance")),
        "{errors:?}"
    );
}
