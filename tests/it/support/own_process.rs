//! For the few tests that change the whole process's environment (PATH, SSL_CERT_FILE,
//! secrets read from variables): each runs in a process of its own, this binary again
//! filtered to that one test, so no other test sees the change or races it.
//!
//! ```ignore
//! #[test]
//! fn sets_path() {
//!     if !in_own_process(module_path!(), "sets_path") {
//!         return;
//!     }
//!     // Only this test runs in this process from here on.
//! }
//! ```

use std::process::Command;

/// Set in the process of its own: the one test it runs.
const OWN_PROCESS_ENV: &str = "KONGUP_IT_OWN_PROCESS";

/// True in the process of its own that runs the test `test` of module `module` (the
/// caller's `module_path!()`): the test goes on. Elsewhere it runs that process, fails
/// with its output if the test did not pass there, and returns false: the caller returns.
pub fn in_own_process(module: &str, test: &str) -> bool {
    // libtest names tests by their path without the crate's name.
    let module = module.split_once("::").map_or("", |(_, path)| path);
    let name = format!("{module}::{test}");
    if std::env::var_os(OWN_PROCESS_ENV).is_some_and(|own| own == name.as_str()) {
        return true;
    }
    let binary = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(binary)
        .args([name.as_str(), "--exact"])
        .env(OWN_PROCESS_ENV, &name)
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in a process of its own: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    false
}
