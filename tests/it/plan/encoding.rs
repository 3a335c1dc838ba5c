//! A plan that is not UTF-8 (issue 14, item 9): the message names the line and column of
//! the first bad byte, as every other plan error does.

use kongup::plan::load::load_plan;

#[test]
fn invalid_utf8_is_refused_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    // Line 3: `name: caf` then a Latin-1 `é` (0xE9), as an editor in ISO-8859-1 saves it;
    // the column counts characters, and line 2 has a UTF-8 `ü` before it.
    let mut bytes = b"# Plan\n# f\xc3\xbcr prod\nname: caf".to_vec();
    bytes.extend_from_slice(b"\xe9\nfrom: 3.4.3\n");
    std::fs::write(&path, &bytes).unwrap();
    let message = match load_plan(&path) {
        Ok(_) => panic!("accepted"),
        Err(errors) => errors.to_string(),
    };
    let at = format!("{}:3:10:", path.display());
    assert!(message.contains(&at), "{message}");
    assert!(message.contains("UTF-8"), "{message}");
}
