//! Plans far larger than any real one (issue 14, item 7): a huge value of a field with a
//! fixed set of words is refused at once and echoed in a few dozen characters; an alias
//! bomb is still refused.

use std::time::{Duration, Instant};

use kongup::plan::load::parse_plan;

const BASE: &str = "\
name: sizes
from: 3.4.3
to: 3.5.0
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

/// 4 MiB: the 16 MB took 2.4 GB and 5 s; this is enough to tell.
const HUGE: usize = 4 * 1024 * 1024;

/// How long reading a valid plan of `size` bytes takes here (its name is that long): what
/// refusing a plan of that size may cost, give or take (the YAML parser reads every byte).
fn reading_takes(size: usize) -> Duration {
    let source = BASE.replace("name: sizes", &format!("name: {}", "n".repeat(size)));
    let started = Instant::now();
    parse_plan(&format!("{source}mode: traditional\n"), "plan.yaml").expect("a valid plan");
    started.elapsed()
}

/// The errors of a plan of about `HUGE` bytes, refused in about the time a valid plan of
/// that size takes to read (it took 35 s where reading takes 2 s, in a debug build).
fn refused_quickly(source: &str) -> String {
    let reading = reading_takes(HUGE);
    let started = Instant::now();
    let errors = match parse_plan(source, "plan.yaml") {
        Ok(_) => panic!("accepted"),
        Err(errors) => errors,
    };
    let took = started.elapsed();
    assert!(
        took < reading * 3 + Duration::from_secs(1),
        "refused in {took:?}, where reading a plan of that size takes {reading:?}"
    );
    errors.to_string()
}

#[test]
fn a_huge_word_is_refused_at_once_and_echoed_short() {
    let source = format!("{BASE}mode: {}\n", "m".repeat(HUGE));
    let message = refused_quickly(&source);
    assert!(message.len() < 400, "{} bytes of message", message.len());
    assert!(
        message.contains("plan.yaml:14:7: `mode`: `mmmmmmmmmm")
            && message.contains(&format!("… ({HUGE} bytes)` is not one of")),
        "{message}"
    );
}

#[test]
fn a_huge_unknown_key_is_refused_at_once_and_echoed_short() {
    // An explicit key (`? …`): YAML caps a plain key at 1024 characters.
    let source = format!("{BASE}mode: traditional\n? {}\n: 1\n", "k".repeat(HUGE));
    let message = refused_quickly(&source);
    assert!(message.len() < 600, "{} bytes of message", message.len());
    assert!(message.contains(&format!("… ({HUGE} bytes)`")), "{message}");
}

#[test]
fn an_alias_bomb_is_still_refused() {
    let mut source =
        format!("{BASE}mode: traditional\nsteps:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (name, previous) in ["b", "c", "d", "e", "f"]
        .iter()
        .zip(["a", "b", "c", "d", "e"])
    {
        source.push_str(&format!(
            "  {name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 10].join(", ")
        ));
    }
    let message = refused_quickly(&source);
    assert!(message.contains("aliases"), "{message}");
}
