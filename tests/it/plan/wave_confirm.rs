//! `rolling.confirm`: one confirm runs a wave's steps (`wave`, the default), or each step
//! is confirmed (`each-step`); any other word is refused with the words it takes.

use kongup::plan::load::parse_plan;
use kongup::plan::model::WaveConfirm;
use kongup::testkit::fleet::hybrid_plan_text;

fn confirm_of(rolling_extra: &str) -> Result<WaveConfirm, String> {
    let source = hybrid_plan_text(
        8,
        &format!("rolling:\n  waves: [1, 50%, 100%]\n{rolling_extra}"),
    );
    parse_plan(&source, "plan.yaml")
        .map(|l| l.plan.rolling.expect("rolling").confirm)
        .map_err(|e| e.to_string())
}

#[test]
fn a_wave_is_confirmed_as_one_unless_the_plan_says_each_step() {
    assert_eq!(confirm_of(""), Ok(WaveConfirm::Wave));
    assert_eq!(confirm_of("  confirm: wave\n"), Ok(WaveConfirm::Wave));
    assert_eq!(
        confirm_of("  confirm: each-step\n"),
        Ok(WaveConfirm::EachStep)
    );
    let refused = confirm_of("  confirm: each\n").unwrap_err();
    assert!(
        refused.contains("rolling.confirm") && refused.contains("each-step"),
        "{refused}"
    );
}
